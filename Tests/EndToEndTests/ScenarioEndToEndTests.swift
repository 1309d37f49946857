import Foundation
import Testing
@testable import Cluster

extension ClusterEndToEndTests {
    static func faultline(_ arguments: [String]) throws -> (code: Int32, out: String, err: String) {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ((exe as NSString).deletingLastPathComponent as NSString)
            .appendingPathComponent("faultline"))
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
    }

    static var repositoryRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }

    /// What a shell script does: up, `faultline fault partition`, heal, down, `faultline report`.
    @Test(.timeLimit(.minutes(2)))
    func faultsFromTheCLIShowInTheRebuiltReport() async throws {
        let folder = try ScratchFolder("cli", file: "cli.toml", text: Self.topologyText)
        defer { folder.remove() }
        let root = folder.root
        let topologyPath = folder.file
        let up = try Self.faultline(["up", topologyPath, "--runs", root + "/runs"])
        #expect(up.code == 0, "up failed: \(up.err)")
        let dir = try FileManager.default.contentsOfDirectory(atPath: root + "/runs").map { root + "/runs/" + $0 }.first!
        defer { _ = try? Self.faultline(["down", "--run", dir]) }
        let split = try Self.faultline(["fault", "partition", "v1,v2", "v3,v4", "--run", dir])
        #expect(split.code == 0, "\(split.err)")
        // Wait until finality has visibly stopped: the heights hold still for over a second.
        var last = -1, stillSince = Date()
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            let top = Int(Self.heights(try await ClusterOps.states(dir: dir)).values.max() ?? 0)
            if top != last { last = top; stillSince = Date() }
            if Date().timeIntervalSince(stillSince) > 1.3 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(Date().timeIntervalSince(stillSince) > 1.3, "finality never stopped under a 2|2 partition")
        #expect(try Self.faultline(["fault", "heal", "--run", dir]).code == 0)
        try await ClusterOps.waitUntil(dir: dir, timeoutSeconds: 20) { states in
            Self.heights(states).values.allSatisfy { Int($0) >= last + 5 }
        }
        #expect(try Self.faultline(["down", "--run", dir]).code == 0)
        let report = try Self.faultline(["report", dir])
        #expect(report.code == 0, "\(report.out)\(report.err)")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/report.json")))
            as? [String: Any]
        let faults = json?["faults"] as? [[String: Any]] ?? []
        #expect(faults.contains { ($0["description"] as? String) == "partition v1,v2 | v3,v4" && $0["end"] != nil })
        let halts = (json?["liveness"] as? [String: Any])?["halts"] as? [[String: Any]] ?? []
        #expect(halts.contains { ($0["cause"] as? String)?.contains("partition v1,v2 | v3,v4") == true })
        let html = try String(contentsOfFile: dir + "/report.html", encoding: .utf8)
        #expect(html.contains("<svg") && html.contains("partition v1,v2 | v3,v4"))
    }

    /// `run`'s contract: a violated expectation exits 1 with the reason; a malformed file exits 2.
    @Test(.timeLimit(.minutes(2)))
    func runExitCodesAndJUnit() throws {
        let root = NSTemporaryDirectory() + "faultline-e2e-run-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let malformed = try Self.faultline(["run", Self.repositoryRoot + "/Topologies/examples/malformed.toml",
                                            "--runs", root + "/runs"])
        #expect(malformed.code == 2)
        #expect(malformed.err.contains("malformed.toml: step[1].groups: no node named 'v9'"), "\(malformed.err)")
        let violated = try Self.faultline(["run", Self.repositoryRoot + "/Topologies/examples/expect-too-much.toml",
                                           "--runs", root + "/runs", "--out", root + "/out"])
        #expect(violated.code == 1, "\(violated.out)\(violated.err)")
        #expect(violated.out.contains("✘ no gap over 1 s, even during the split (wrong on purpose)"), "\(violated.out)")
        // An independent JUnit reader (Python's XML parser) sees one failing case among the rest.
        let check = Process()
        check.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        check.arguments = ["python3", "-c", """
            import sys, xml.etree.ElementTree as ET
            suite = ET.parse(sys.argv[1]).getroot().find('testsuite')
            cases = suite.findall('testcase')
            failed = [c.get('name') for c in cases if c.find('failure') is not None]
            assert int(suite.get('tests')) == len(cases) == 7, cases  # 2 stated + 5 implicit
            assert failed == ['no gap over 1 s, even during the split (wrong on purpose)'], failed
            """, root + "/out/junit.xml"]
        try check.run()
        check.waitUntilExit()
        #expect(check.terminationStatus == 0)

        // The fidelity check on that real run: the same file in simulated time tells the same story
        // (the split halts finality, the heal ends it, safety holds; the wrong expectation fails in both).
        let file = Self.repositoryRoot + "/Topologies/examples/expect-too-much.toml"
        let fidelity = try Self.faultline(["simulate", file, "--compare", root + "/out/report.json",
                                           "--runs", root + "/runs", "--out", root + "/simulated"])
        #expect(fidelity.code == 0, "\(fidelity.out)\(fidelity.err)")
        #expect(fidelity.out.contains("= fault split: real halted"), "\(fidelity.out)")
        #expect(fidelity.out.contains("= nodes agree on every block: real true, simulated true"), "\(fidelity.out)")
        #expect(fidelity.out.contains("fidelity: the simulated run agrees with the real one"), "\(fidelity.out)")
        // A report of another scenario is refused, naming both.
        let wrongReport = Self.repositoryRoot + "/Topologies/partition-halves.toml"
        let refused = try Self.faultline(["simulate", wrongReport, "--compare", root + "/out/report.json",
                                          "--runs", root + "/runs", "--out", root + "/simulated-2"])
        #expect(refused.code == 2)
        #expect(refused.err.contains("a report of scenario 'expect-too-much', not 'partition-halves'"), "\(refused.err)")
    }
}
