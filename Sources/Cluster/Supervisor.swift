import Formats
import Foundation

/// Starts, signals and stops node processes. Nodes run in their own session (setsid) so a cluster
/// started by `faultline up` outlives the command; their pids are kept in each node's folder.
public enum Supervisor {
    /// glibc's POSIX_SPAWN_SETSID (0x80, behind _GNU_SOURCE, so not imported into Swift).
    static let spawnSetSid: Int16 = 0x80

    /// `faultline-node` next to the running executable, unless $FAULTLINE_NODE_BIN says otherwise.
    public static func nodeBinary() -> String {
        if let explicit = ProcessInfo.processInfo.environment["FAULTLINE_NODE_BIN"] { return explicit }
        let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0]
        return ((me as NSString).deletingLastPathComponent as NSString).appendingPathComponent("faultline-node")
    }

    /// Spawns the node with stdout and stderr appended to its `node.log`; writes `pid`.
    @discardableResult
    public static func start(_ node: RunManifest.NodeEntry, runDir: String, binary: String = nodeBinary()) throws -> pid_t {
        let nodeDir = runDir + "/" + node.dir
        guard node.role == "external" || FileManager.default.isExecutableFile(atPath: binary) else {
            throw RunError("node binary not found at \(binary) (build with `swift build` or set FAULTLINE_NODE_BIN)")
        }
        var executable = binary
        var arguments = [binary, "--config", nodeDir + "/node.json"]
        if node.role == "external" {
            // A foreign binary: the command line `up` filled in for this member.
            guard let data = FileManager.default.contents(atPath: nodeDir + "/command.json"),
                  let argv = try? JSONDecoder().decode([String].self, from: data), let program = argv.first else {
                throw RunError("cannot start \(node.name): no command line in \(nodeDir)/command.json")
            }
            guard let path = program.hasPrefix("/") ? program : HostNetwork.which(program) else {
                throw RunError("cannot start \(node.name): `\(program)` is not installed")
            }
            executable = path
            arguments = [path] + argv.dropFirst()
        }
        // In its network namespace through `ip netns exec`, which enters it and then execs the node
        // (same pid, so signals and the pid file work as on loopback).
        if let namespace = node.namespace {
            guard let ip = HostNetwork.which("ip") else { throw RunError("cannot start \(node.name): `ip` is not installed") }
            executable = ip
            arguments = [ip, "netns", "exec", namespace] + arguments
        }
        return try spawn(node.name, executable: executable, arguments: arguments, logPath: nodeDir + "/node.log",
                         pidPath: nodeDir + "/pid")
    }

    /// Spawns a long-lived process in its own session with stdout and stderr appended to `logPath`
    /// and nothing else of this process's open files; writes its pid to `pidPath`.
    static func spawn(_ name: String, executable: String, arguments: [String], logPath: String,
                      pidPath: String) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Nothing else the parent has open may leak into a long-lived process: a pipe inherited from
        // `out=$(faultline up)` would keep the caller waiting for EOF until the cluster stops.
        for fd in inheritedDescriptors() { posix_spawn_file_actions_addclose(&actions, fd) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Supervisor.spawnSetSid)
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
        guard rc == 0 else { throw RunError("cannot start \(name): \(String(cString: strerror(rc)))") }
        try "\(pid)\n".write(toFile: pidPath, atomically: true, encoding: .utf8)
        return pid
    }

    /// This process's open descriptors above 2 that are not close-on-exec.
    static func inheritedDescriptors() -> [Int32] {
        let listed = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return listed.compactMap { Int32($0) }.filter { fd in
            guard fd > 2 else { return false }
            let flags = fcntl(fd, F_GETFD)
            return flags != -1 && flags & FD_CLOEXEC == 0
        }
    }

    public static func pid(_ node: RunManifest.NodeEntry, runDir: String) -> pid_t? {
        guard let text = try? String(contentsOfFile: runDir + "/" + node.dir + "/pid", encoding: .utf8),
              let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { return nil }
        return pid
    }

    /// True when the process exists and is not a zombie.
    public static func isAlive(_ pid: pid_t) -> Bool {
        reapChildren()
        guard kill(pid, 0) == 0 else { return false }
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return true }
        let state = stat[stat.index(close, offsetBy: 2)]
        return state != "Z" && state != "X"
    }

    public static func signal(_ pid: pid_t, _ signal: Int32) -> Bool {
        kill(pid, signal) == 0
    }

    /// Collects exited children of this process so they do not linger as zombies.
    public static func reapChildren() {
        var status: Int32 = 0
        // Stops at the first call that finds none (a `for … where` would make all 1,000 calls, each a scan of
        // every child: 100 nodes × 1,000 made one liveness sweep of a 100-node cluster take 6 s).
        var reaped = 0
        while reaped < 1_000, waitpid(-1, &status, WNOHANG) > 0 { reaped += 1 }
    }

    /// SIGTERM, then SIGKILL for any still alive after `graceSeconds`.
    public static func stopAll(_ nodes: [RunManifest.NodeEntry], runDir: String, graceSeconds: Double = 5) async {
        let pids = nodes.compactMap { pid($0, runDir: runDir) }.filter(isAlive)
        for pid in pids { _ = signal(pid, SIGTERM) }
        let deadline = Date().addingTimeInterval(graceSeconds)
        while Date() < deadline, pids.contains(where: isAlive) {
            try? await Task.sleep(for: .milliseconds(20))
        }
        for pid in pids where isAlive(pid) {
            _ = signal(pid, SIGCONT)
            _ = signal(pid, SIGKILL)
        }
        reapChildren()
    }
}
