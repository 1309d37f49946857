// swift-tools-version: 6.1
import PackageDescription

// The protocol cores are compiled for cross-module optimization: their generic code (the replica core over
// the node's and the simulator's message and peer types, the vote and proposal tables) is specialized where it
// is used instead of running through runtime generic metadata. Measured: the simulator 11% faster from the
// consensus module alone.
let crossModule: [SwiftSetting] = [.unsafeFlags(["-cross-module-optimization"])]
// The simulator's event loop is one thread touching its own objects: in release builds the run-time
// exclusivity checks on their stored properties cost ~5% of a simulated hour and can find nothing
// the debug builds (tests, swarm) do not check. The compile-time checks stay.
let simulatorLoop: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "Faultline",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "faultline", targets: ["faultline"]),
        .executable(name: "faultline-node", targets: ["faultline-node"]),
        .library(name: "RPCClient", targets: ["RPCClient", "RPC"]),
        // The protocol cores, for Tools/Benchmarks (ordo-one/benchmark micro-benchmarks) and Tools/Fuzz.
        .library(name: "FaultlineCores", targets: ["Basics", "Sodium", "Wire", "Ledger", "Consensus", "RPC"]),
        // The topology and scenario file parsers, for the fuzzers in Tools/Fuzz.
        .library(name: "FaultlineFiles", targets: ["Formats"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.1.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CSodium",
            pkgConfig: "libsodium",
            providers: [.apt(["libsodium-dev"])]
        ),
        .target(name: "Sodium", dependencies: ["CSodium"], swiftSettings: crossModule),
        // Small pure values every layer shares: event-line JSON, a seeded generator, token buckets.
        .target(name: "Basics", swiftSettings: crossModule),
        .target(name: "Wire", dependencies: ["Sodium"], swiftSettings: crossModule),
        .target(
            name: "Ledger",
            dependencies: ["Basics", "Wire", "Sodium", "FraudProof", .product(name: "DequeModule", package: "swift-collections")],
            swiftSettings: crossModule
        ),
        .target(
            name: "Consensus",
            dependencies: ["Basics", "Ledger", "Wire", "Sodium", .product(name: "DequeModule", package: "swift-collections")],
            exclude: ["README.md"],
            swiftSettings: crossModule
        ),
        .target(
            name: "Rollup",
            dependencies: ["Basics", "Ledger", "FraudProof", "Wire", "Sodium",
                           .product(name: "DequeModule", package: "swift-collections")],
            swiftSettings: crossModule
        ),
        .target(name: "FraudProof", dependencies: ["Basics", "Wire", "Sodium"], swiftSettings: crossModule),
        .target(name: "RPC", dependencies: ["Basics", "Wire", "Ledger", "Sodium"]),
        .target(
            name: "RPCClient",
            dependencies: [
                "RPC",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .target(
            name: "Transport",
            dependencies: [
                "Basics", "Wire", "Sodium",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),
        .target(
            name: "Node",
            dependencies: [
                "Basics", "Sodium", "Wire", "Ledger", "Consensus", "Rollup", "FraudProof", "Transport", "Formats", "RPC",
                "RPCClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),
        // The harness's pure half: topology and scenario files, the fault vocabulary and link shaping, the keys
        // and genesis a topology determines. No NIO: the simulator uses these without the process supervisor.
        .target(
            name: "Formats",
            dependencies: ["Basics", "Wire", "Sodium", "Ledger", "Consensus", "Rollup", "RPC",
                           .product(name: "HeapModule", package: "swift-collections")]
        ),
        .target(
            name: "Cluster",
            dependencies: [
                "Basics", "Formats", "Transport", "Sodium", "Wire", "Ledger", "Consensus", "Rollup", "RPC", "RPCClient",
                .product(name: "Yams", package: "Yams"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .target(
            name: "Simulation",
            dependencies: [
                "Basics", "Formats", "Consensus", "Ledger", "Rollup", "RPC", "Wire", "Sodium",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
            ],
            exclude: ["README.md"],
            swiftSettings: simulatorLoop
        ),
        .target(
            name: "Liveness",
            dependencies: [
                "Basics", "Formats", "Wire",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            exclude: ["README.md"]
        ),
        .executableTarget(
            name: "faultline",
            dependencies: [
                "Basics", "Cluster", "Formats", "Liveness", "Simulation", "Consensus", "Ledger", "Rollup", "FraudProof",
                "Transport", "Wire", "Sodium", "RPC",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "faultline-node",
            dependencies: [
                "Node",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "SodiumTests", dependencies: ["Sodium"]),
        .testTarget(name: "WireTests", dependencies: ["Basics", "Wire", "Sodium"]),
        .testTarget(name: "LedgerTests", dependencies: ["Ledger", "Wire", "Sodium"]),
        .testTarget(name: "ConsensusTests", dependencies: ["Basics", "Consensus", "Ledger", "Wire", "Sodium"]),
        .testTarget(name: "RollupTests", dependencies: ["Rollup", "Ledger", "Wire", "Sodium"]),
        .testTarget(name: "FraudProofTests", dependencies: ["Basics", "FraudProof", "Wire", "Sodium", "Ledger", "Rollup"]),
        .testTarget(
            name: "TransportTests",
            dependencies: [
                "Basics", "Transport", "Wire", "Sodium",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "ClusterTests",
            dependencies: [
                "Cluster", "Formats", "Liveness", "Ledger", "RPC", "RPCClient", "Wire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]),
        .testTarget(name: "FormatsTests", dependencies: ["Formats", "Wire"]),
        .testTarget(name: "LivenessTests", dependencies: ["Liveness", "Formats", "Wire"]),
        .testTarget(name: "SimulationTests", dependencies: ["Simulation", "Formats", "Liveness", "Consensus", "Wire", "Sodium"]),
        .testTarget(name: "RPCTests", dependencies: ["RPC", "Ledger", "Wire", "Sodium"]),
        .testTarget(
            name: "NodeTests",
            dependencies: [
                "Basics", "Node", "Consensus", "Wire", "Sodium", "Ledger", "Transport", "RPC", "Simulation", "Formats",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "Cluster", "Formats", "Liveness", "Wire", "Sodium", "RPC", "RPCClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
