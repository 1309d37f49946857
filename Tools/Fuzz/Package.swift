// swift-tools-version: 6.1
// libFuzzer targets for the parsers that read peers' bytes and users' files, in their own package so the project's
// build is untouched. Build and run with Tools/fuzz.sh (it builds with `--sanitize=fuzzer` and
// writes a seed corpus of real, signed messages before the first run).
import PackageDescription

let package = Package(
    name: "FaultlineFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Faultline", path: "../.."),
    ],
    targets: [
        // Envelopes, every message kind, bundles and blocks: decoding never traps, and whatever
        // decodes re-encodes to the same bytes (the codec is canonical).
        .executableTarget(
            name: "FuzzWire",
            dependencies: [.product(name: "FaultlineCores", package: "Faultline")],
            path: "Sources/FuzzWire"
        ),
        // Block-part reassembly against a real block's Merkle root: never traps, and a set of parts
        // that completes is the original block, byte for byte (no forged part gets in).
        .executableTarget(
            name: "FuzzParts",
            dependencies: [.product(name: "FaultlineCores", package: "Faultline")],
            path: "Sources/FuzzParts"
        ),
        // Topology and scenario files: any text parses or fails with an error naming the file and field.
        .executableTarget(
            name: "FuzzFiles",
            dependencies: [.product(name: "FaultlineFiles", package: "Faultline")],
            path: "Sources/FuzzFiles"
        ),
        // JSON-RPC bodies through the parser and every method handler: always a well-formed answer.
        .executableTarget(
            name: "FuzzRPC",
            dependencies: [.product(name: "FaultlineCores", package: "Faultline")],
            path: "Sources/FuzzRPC"
        ),
    ],
    swiftLanguageModes: [.v6]
)
