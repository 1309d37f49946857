// swift-tools-version: 6.1
// Micro-benchmarks of the protocol cores with ordo-one/benchmark, in their own package so the
// project's `swift test` does not build the benchmark framework:
//
//   cd Tools/Benchmarks && swift package benchmark
import PackageDescription

let package = Package(
    name: "FaultlineBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Faultline", path: "../.."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "Cores",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "FaultlineCores", package: "Faultline"),
            ],
            path: "Benchmarks/Cores",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
