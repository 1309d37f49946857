import Foundation
import Formats

/// Runs short-lived child processes (by default this executable again), up to `jobs` at once: the swarm's cases and
/// the planted bugs of `faultline mutants` each run in a process of their own, so one that traps is a reported crash,
/// not the end, and all of a machine's cores are used.
public struct ChildProcesses {
    /// One child that ended.
    public struct Finished: Sendable {
        /// What `next` returned with the child's arguments (a seed, a bug's position).
        public var tag: Int
        public var status: Int32
        /// Ended by a signal (a trap, a crash) rather than an exit.
        public var signaled: Bool
        /// The last `outputBytesMax` bytes of its standard output and error.
        public var output: String
        public var errors: String
        public var seconds: Double
    }

    /// What a child may leave to be read; more (a long crash report) keeps only its end.
    public static let outputBytesMax = 64 * 1024

    public var jobs: Int
    public var executable: String

    public init(jobs: Int, executable: String = CommandLine.arguments[0]) {
        self.jobs = jobs
        self.executable = executable
    }

    /// Starts children while fewer than `jobs` run and `next` gives one (`nil`: no more, and it is not asked again),
    /// and hands each to `finished` as it ends, in the order they end. Output goes to files, not pipes, so a child
    /// that writes a lot never blocks on a full pipe.
    public func run(next: () -> (tag: Int, arguments: [String])?, finished: (Finished) throws -> Void) throws {
        precondition(jobs >= 1, "jobs \(jobs)")
        let dir = FileManager.default.temporaryDirectory.path + "/faultline-children-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var running: [(tag: Int, process: Process, out: String, err: String, started: Date)] = []
        var exhausted = false
        var serial = 0
        while true {
            while !exhausted, running.count < jobs {
                guard let (tag, arguments) = next() else { exhausted = true; break }
                serial += 1
                let out = dir + "/\(serial).out", err = dir + "/\(serial).err"
                guard FileManager.default.createFile(atPath: out, contents: nil),
                      FileManager.default.createFile(atPath: err, contents: nil) else {
                    throw RunError("could not create \(out) for a child process's output")
                }
                let process = Process()
                process.executableURL = URL(fileURLWithPath: executable)
                process.arguments = arguments
                process.environment = ProcessInfo.processInfo.environment.merging(["SWIFT_BACKTRACE": "enable=no"]) { $1 }
                process.standardOutput = FileHandle(forWritingAtPath: out)
                process.standardError = FileHandle(forWritingAtPath: err)
                try process.run()
                running.append((tag, process, out, err, Date()))
            }
            if running.isEmpty { return }
            guard let done = running.firstIndex(where: { !$0.process.isRunning }) else {
                Thread.sleep(forTimeInterval: 0.02) // children run for a second or more: polling their end costs nothing
                continue
            }
            let child = running.remove(at: done)
            child.process.waitUntilExit()
            let result = Finished(tag: child.tag, status: child.process.terminationStatus,
                                  signaled: child.process.terminationReason == .uncaughtSignal,
                                  output: Self.tail(of: child.out), errors: Self.tail(of: child.err),
                                  seconds: Date().timeIntervalSince(child.started))
            try? FileManager.default.removeItem(atPath: child.out)
            try? FileManager.default.removeItem(atPath: child.err)
            try finished(result)
        }
    }

    /// The last `outputBytesMax` bytes of a file, as text.
    static func tail(of path: String) -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { return "" }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        try? handle.seek(toOffset: size > UInt64(outputBytesMax) ? size - UInt64(outputBytesMax) : 0)
        return String(decoding: (try? handle.readToEnd()) ?? Data(), as: UTF8.self)
    }
}
