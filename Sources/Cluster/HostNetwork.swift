import Formats
import Foundation

/// The network objects of one run with `network = "netns"`: a bridge on this host, and per node a
/// network namespace joined to it by a veth pair, with an address of its own. Recorded in `run.json`
/// before anything is created, so `faultline down --run DIR` removes it all even after the runner
/// was killed.
public struct NetworkPlan: Codable, Sendable, Equatable {
    public struct Member: Codable, Sendable, Equatable {
        public var name: String
        public var namespace: String
        /// The host end of the node's veth pair (the node's end is `eth0` in its namespace).
        public var hostVeth: String
        public var address: String
    }

    /// Short and random: it names the bridge, namespaces and veths, so parallel runs do not collide.
    public var id: String
    public var bridge: String
    /// The /24 the run uses, e.g. "10.213.7.0/24"; the bridge has .1, node i has .(i + 2).
    public var subnet: String
    public var bridgeAddress: String
    public var members: [Member]
    /// Whether this kernel has tc's netem (probed when the network is built).
    public var netem: Bool?

    /// The device name of each node's end of its veth pair.
    public static let nodeDevice = "eth0"

    public func member(_ name: String) -> Member? { members.first { $0.name == name } }
}

/// Creates and removes the namespaces, veths and bridge of `NetworkPlan`s, and writes the kernel
/// layer's fault rules into them. Every command is iproute2's `ip`, `nft` or `tc`; nothing on the
/// host's own interfaces, routes or nftables is touched: the bridge is the run's own, its address is
/// from a /24 no interface or route of the host uses, and every rule lives in a node's namespace.
public enum HostNetwork {
    /// Fixed ports inside each namespace: every node is a host of its own, so all can use the same.
    public static let gossipPort = 26_656
    public static let votePort = 26_657
    public static let controlPort = 26_658
    public static let rpcPort = 8_545

    /// Why this machine cannot run netns clusters, or nil if it can.
    public static func unavailable() -> String? {
        if geteuid() != 0 {
            return "network = \"netns\" needs root (it creates network namespaces, veth pairs and a bridge); "
                + "run as root or use network = \"loopback\""
        }
        for (tool, package) in [("ip", "iproute2"), ("nft", "nftables"), ("tc", "iproute2")] where which(tool) == nil {
            return "network = \"netns\" needs `\(tool)` (Debian package \(package)), which is not installed"
        }
        return nil
    }

    /// Picks an id and a free /24, creates the bridge with its address, and returns the plan for `names`.
    /// Runs under a lock file so parallel runs on this machine pick different subnets.
    public static func reserve(names: [String]) throws -> NetworkPlan {
        if let problem = unavailable() { throw RunError(problem) }
        guard names.count <= NetworkMode.netnsNodesMax else {
            throw RunError("netns: \(names.count) nodes, at most \(NetworkMode.netnsNodesMax) in one /24")
        }
        let lock = open(lockPath, O_CREAT | O_RDWR, 0o600)
        guard lock >= 0 else { throw RunError("netns: cannot open the lock file \(lockPath): \(String(cString: strerror(errno)))") }
        defer { close(lock) }
        guard flock(lock, LOCK_EX) == 0 else { throw RunError("netns: cannot lock \(lockPath)") }
        defer { _ = flock(lock, LOCK_UN) }
        let used = try usedPrefixes()
        guard let third = (0..<256).map({ ($0 + Int.random(in: 0..<256)) % 256 }).first(where: {
            !used.contains("\(subnetBase).\($0)")
        }) else {
            throw RunError("netns: every /24 of \(subnetBase).0.0/16 is in use on this host")
        }
        let prefix = "\(subnetBase).\(third)"
        let id = String(UInt32.random(in: 0...UInt32.max), radix: 36).suffix(5)
        let idText = String(repeating: "0", count: 5 - id.count) + id
        let plan = NetworkPlan(
            id: idText, bridge: "fl\(idText)br", subnet: "\(prefix).0/24", bridgeAddress: "\(prefix).1",
            members: names.enumerated().map { index, name in
                .init(name: name, namespace: "fl-\(idText)-\(name)", hostVeth: "fl\(idText)n\(index)",
                      address: "\(prefix).\(index + 2)")
            })
        try run(["ip", "-batch", "-"], input: """
            link add \(plan.bridge) type bridge
            link set \(plan.bridge) up
            address add \(plan.bridgeAddress)/24 dev \(plan.bridge)

            """)
        return plan
    }

    /// Creates every node's namespace and veth pair and probes for netem; the bridge exists already.
    public static func build(_ plan: inout NetworkPlan) throws {
        var host: [String] = []
        for member in plan.members {
            host.append("netns add \(member.namespace)")
            host.append("link add \(member.hostVeth) type veth peer name \(NetworkPlan.nodeDevice) netns \(member.namespace)")
            host.append("link set \(member.hostVeth) master \(plan.bridge) up")
        }
        try run(["ip", "-batch", "-"], input: host.joined(separator: "\n") + "\n")
        for member in plan.members {
            try run(["ip", "-n", member.namespace, "-batch", "-"], input: """
                address add \(member.address)/24 dev \(NetworkPlan.nodeDevice)
                link set \(NetworkPlan.nodeDevice) up
                link set lo up

                """)
        }
        if let first = plan.members.first {
            plan.netem = (try? run(["tc", "-n", first.namespace, "qdisc", "add", "dev", "lo", "root", "netem",
                                    "delay", "1ms"])) != nil
            if plan.netem == true { _ = try? run(["tc", "-n", first.namespace, "qdisc", "del", "dev", "lo", "root"]) }
        }
    }

    /// Moves a member's namespace to another address of the subnet (a pod that comes back as a new pod).
    public static func readdress(_ member: NetworkPlan.Member, to address: String) throws {
        try run(["ip", "-n", member.namespace, "-batch", "-"], input: """
            address flush dev \(NetworkPlan.nodeDevice)
            address add \(address)/24 dev \(NetworkPlan.nodeDevice)

            """)
    }

    /// Removes everything `plan` names that still exists: the veths first (deleting the host end removes the
    /// pair at once), then the namespaces, then the bridge. Returns what could not be removed. Not namespaces
    /// first: the kernel tears a deleted namespace's devices down later, in the background, and a host veth
    /// was still listed after `down` had returned (a netns test failed on it).
    @discardableResult
    public static func destroy(_ plan: NetworkPlan) -> [String] {
        for member in plan.members where linkExists(member.hostVeth) {
            _ = try? run(["ip", "link", "del", member.hostVeth])
        }
        let namespaces = Set(listNamespaces())
        for member in plan.members where namespaces.contains(member.namespace) {
            _ = try? run(["ip", "netns", "del", member.namespace])
        }
        if linkExists(plan.bridge) { _ = try? run(["ip", "link", "del", plan.bridge]) }
        return leftovers(plan)
    }

    /// What of `plan` still exists on this host: namespaces, veths, the bridge.
    public static func leftovers(_ plan: NetworkPlan) -> [String] {
        let namespaces = Set(listNamespaces())
        var out = plan.members.filter { namespaces.contains($0.namespace) }.map { "namespace \($0.namespace)" }
        out += plan.members.filter { linkExists($0.hostVeth) }.map { "veth \($0.hostVeth)" }
        if linkExists(plan.bridge) { out.append("bridge \(plan.bridge)") }
        return out
    }

    /// Writes one node's kernel fault rules: its nftables table (inbound blocks and loss) and its tc
    /// qdiscs (outbound bandwidth and netem). Replaces whatever was there.
    public static func applyRules(_ member: NetworkPlan.Member, plan: NetworkPlan,
                                  inbound: [String: LinkRule], outbound: [String: LinkRule]) throws {
        func addressed(_ rules: [String: LinkRule]) -> [(name: String, address: String, rule: LinkRule)] {
            rules.compactMap { name, rule in plan.member(name).map { (name, $0.address, rule) } }
        }
        try run(["ip", "netns", "exec", member.namespace, "nft", "-f", "-"],
                input: KernelFaults.nftScript(inbound: addressed(inbound)))
        let batch = KernelFaults.tcBatch(device: NetworkPlan.nodeDevice, outbound: addressed(outbound))
        // The old shaping goes (an error just means there was none), then the new one if any.
        _ = try? run(["tc", "-n", member.namespace, "qdisc", "del", "dev", NetworkPlan.nodeDevice, "root"])
        if !batch.isEmpty {
            try run(["tc", "-n", member.namespace, "-batch", "-"], input: batch.joined(separator: "\n") + "\n")
        }
    }

    /// Packets the drop rules of a node's nftables table have dropped, by rule comment (e.g.
    /// "v2 blocked"), read from `nft -j`.
    public static func dropCounters(_ member: NetworkPlan.Member) throws -> [String: UInt64] {
        let text = try run(["ip", "netns", "exec", member.namespace, "nft", "-j", "list", "table", "inet",
                            KernelFaults.table])
        guard let json = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
              let items = json["nftables"] as? [[String: Any]] else {
            throw RunError("nft -j in \(member.namespace): not the JSON expected")
        }
        var out: [String: UInt64] = [:]
        for item in items {
            guard let rule = item["rule"] as? [String: Any], let comment = rule["comment"] as? String,
                  let expressions = rule["expr"] as? [[String: Any]] else { continue }
            for expression in expressions {
                if let counter = expression["counter"] as? [String: Any], let packets = counter["packets"] as? Int {
                    out[comment, default: 0] += UInt64(packets)
                }
            }
        }
        return out
    }

    // MARK: - Commands

    static let subnetBase = "10.213"
    static let lockPath = "/tmp/faultline-netns.lock"

    /// The /24 prefixes ("10.213.7") of `subnetBase` that an address or a route of this host uses.
    static func usedPrefixes() throws -> Set<String> {
        let text = try run(["ip", "-4", "-o", "address", "show"]) + "\n" + run(["ip", "-4", "route", "show"])
        var used = Set<String>()
        for word in text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "/" }) where word.hasPrefix(subnetBase + ".") {
            let octets = word.split(separator: ".")
            if octets.count >= 3 { used.insert(octets[0...2].joined(separator: ".")) }
        }
        // A /16 or wider route over the base covers every /24 of it.
        if text.contains("\(subnetBase).0.0/16") { throw RunError(
            "netns: this host routes \(subnetBase).0.0/16 already (ip route); Faultline will not add a bridge into it") }
        return used
    }

    static func listNamespaces() -> [String] {
        ((try? run(["ip", "netns", "list"])) ?? "").split(separator: "\n").compactMap {
            $0.split(separator: " ").first.map(String.init)
        }
    }

    static func linkExists(_ name: String) -> Bool {
        (try? run(["ip", "link", "show", "dev", name])) != nil
    }

    /// The full path of a tool on $PATH or in /usr/sbin and /sbin.
    static func which(_ tool: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let folders = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        return folders.map { $0 + "/" + tool }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Runs a tool and returns its standard output; throws with its standard error when it fails.
    @discardableResult
    static func run(_ argv: [String], input: String? = nil) throws -> String {
        guard let executable = which(argv[0]) else { throw RunError("`\(argv[0])` is not installed") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = Array(argv.dropFirst())
        let output = Pipe()
        let errors = Pipe()
        let stdin = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = input == nil ? FileHandle.nullDevice : stdin
        try process.run()
        if let input {
            stdin.fileHandleForWriting.write(Data(input.utf8))
            try? stdin.fileHandleForWriting.close()
        }
        // Output is read before waiting, so a full pipe cannot stall the tool.
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let message = String(decoding: err, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw RunError("`\(argv.joined(separator: " "))` failed (exit \(process.terminationStatus)): \(message)")
        }
        return String(decoding: out, as: UTF8.self)
    }
}
