import Foundation
import Testing

/// The CLI's contract for bad input: exit code 2 and a message naming the file, field and problem.
@Suite struct CLITests {
    static func binary(_ name: String) -> String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
        return ((exe as NSString).deletingLastPathComponent as NSString).appendingPathComponent(name)
    }

    static func run(_ arguments: [String]) throws -> (code: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary("faultline"))
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: outData, as: UTF8.self),
                String(decoding: errData, as: UTF8.self))
    }

    @Test func malformedTopologyExitsTwoWithPreciseMessage() throws {
        let path = NSTemporaryDirectory() + "faultline-bad-\(getpid()).toml"
        try "[cluster]\n[[node]]\nname = \"v1\"\nstake = -5\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = try Self.run(["up", path, "--runs", NSTemporaryDirectory() + "faultline-never"])
        #expect(result.code == 2)
        #expect(result.stderr.contains("\(path): node[1].stake: -5 is out of range"), "stderr: \(result.stderr)")
    }

    @Test func statusWithoutARunExitsTwo() throws {
        let result = try Self.run(["status", "--run", "/nonexistent-run"])
        #expect(result.code == 2)
        #expect(result.stderr.contains("no run folder at /nonexistent-run"))
    }
}
