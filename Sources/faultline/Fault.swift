import ArgumentParser
import Cluster
import Foundation

/// Process faults against a running cluster, from any shell script.
struct Fault: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inject a fault into a running cluster.",
        subcommands: [Kill.self, Pause.self, Resume.self, Restart.self])

    static func target(_ runOption: RunOption, _ name: String) throws -> (String, RunManifest.NodeEntry) {
        do {
            let manifest = try RunFolder.load(runOption.dir)
            return (runOption.dir, try ClusterOps.node(named: name, in: manifest))
        } catch {
            throw Exit.badInput("\(error)")
        }
    }

    static func signal(_ runOption: RunOption, _ name: String, _ signal: Int32, _ verb: String) throws {
        let (dir, node) = try target(runOption, name)
        guard let pid = Supervisor.pid(node, runDir: dir), Supervisor.isAlive(pid) else {
            throw Exit.failure("\(name) is not running")
        }
        guard Supervisor.signal(pid, signal) else { throw Exit.failure("cannot signal \(name) (pid \(pid))") }
        print("\(verb) \(name) (pid \(pid))")
    }

    struct Kill: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "SIGKILL a node (kill -9).")
        @OptionGroup var runOption: RunOption
        @Argument var node: String
        func run() throws { try Fault.signal(runOption, node, SIGKILL, "killed") }
    }

    struct Pause: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "SIGSTOP a node.")
        @OptionGroup var runOption: RunOption
        @Argument var node: String
        func run() throws { try Fault.signal(runOption, node, SIGSTOP, "paused") }
    }

    struct Resume: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "SIGCONT a paused node.")
        @OptionGroup var runOption: RunOption
        @Argument var node: String
        func run() throws { try Fault.signal(runOption, node, SIGCONT, "resumed") }
    }

    struct Restart: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start a node again (SIGKILL first if it is still running); it reloads its store and catches up.")
        @OptionGroup var runOption: RunOption
        @Argument var node: String
        func run() async throws {
            let (dir, entry) = try Fault.target(runOption, node)
            if let pid = Supervisor.pid(entry, runDir: dir), Supervisor.isAlive(pid) {
                _ = Supervisor.signal(pid, SIGKILL)
                while Supervisor.isAlive(pid) { try await Task.sleep(for: .milliseconds(5)) }
            }
            let pid = try Supervisor.start(entry, runDir: dir)
            print("restarted \(node) (pid \(pid))")
        }
    }
}
