import Foundation
import Testing
@testable import Cluster

/// The pool that runs the swarm's cases and the planted bugs each in a process of its own: every child's end is
/// reported with its output, no more than `jobs` run at once, a crash is told apart from an exit, and a child that
/// writes a lot cannot block.
@Suite struct ChildProcessesTests {
    @Test func everyChildIsReportedWithItsStatusAndOutput() throws {
        var next = 0
        var finished: [ChildProcesses.Finished] = []
        try ChildProcesses(jobs: 2, executable: "/bin/sh").run(next: {
            guard next < 5 else { return nil }
            defer { next += 1 }
            return (next, ["-c", "echo out-$0; echo err-$0 >&2; exit $1", String(next), String(next % 2 == 0 ? 0 : 3)])
        }, finished: { finished.append($0) })
        #expect(finished.map(\.tag).sorted() == [0, 1, 2, 3, 4])
        for child in finished {
            #expect(child.output == "out-\(child.tag)\n")
            #expect(child.errors == "err-\(child.tag)\n")
            #expect(child.status == (child.tag % 2 == 0 ? 0 : 3))
            #expect(!child.signaled)
        }
    }

    @Test func noMoreThanJobsRunAtOnce() throws {
        let dir = FileManager.default.temporaryDirectory.path + "/children-at-once-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var next = 0
        var counts: [Int] = []
        // Each child marks itself running, counts the marks, works a moment and unmarks: it sees the others that run.
        try ChildProcesses(jobs: 3, executable: "/bin/sh").run(next: {
            guard next < 12 else { return nil }
            defer { next += 1 }
            return (next, ["-c", "touch $0/$1; ls $0 | wc -l; sleep 0.05; rm $0/$1", dir, String(next)])
        }, finished: { counts.append(Int($0.output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1) })
        #expect(counts.count == 12)
        #expect(counts.allSatisfy { (1...3).contains($0) })
    }

    @Test func aKilledChildIsASignalAndNotAnExit() throws {
        var started = false
        var finished: [ChildProcesses.Finished] = []
        try ChildProcesses(jobs: 1, executable: "/bin/sh").run(next: {
            if started { return nil }
            started = true
            return (7, ["-c", "kill -9 $$"])
        }, finished: { finished.append($0) })
        #expect(finished.count == 1)
        #expect(finished.first?.tag == 7)
        #expect(finished.first?.signaled == true)
    }

    @Test func aChildThatWritesALotEndsAndLeavesItsTail() throws {
        var started = false
        var output = ""
        try ChildProcesses(jobs: 1, executable: "/bin/sh").run(next: {
            if started { return nil }
            started = true
            return (0, ["-c", "head -c 1000000 /dev/zero | tr '\\0' x; echo end"])
        }, finished: { output = $0.output })
        #expect(output.utf8.count == ChildProcesses.outputBytesMax)
        #expect(output.hasSuffix("xend\n"))
    }
}
