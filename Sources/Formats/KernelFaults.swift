/// How the nodes of a run reach each other.
public enum NetworkMode: String, Codable, Sendable, Equatable {
    /// Every node on this host's loopback, on ports of its own.
    case loopback
    /// Every node in a Linux network namespace of its own, with its own address on a bridge the run
    /// creates (root only). Link faults can then be made by the kernel.
    case netns

    /// Node addresses come from one /24 (.1 is the bridge).
    public static let netnsNodesMax = 250
}

/// Which layer makes a link fault (partition, cut, loss, delay, bandwidth …).
public enum FaultLayer: String, Codable, Sendable, Equatable, CaseIterable {
    /// The sending node's own UDP layer (any machine; can drop by message kind).
    case node
    /// nftables rules and tc qdiscs inside each node's network namespace: the node's code never
    /// sees them, so it can neither cheat nor be blind to them.
    case kernel
}

/// The kernel layer's rules, as text for `nft -f` and `tc -batch`, from the same folded link rules the
/// node layer uses. Pure: which address each node has and whether the kernel has netem come in.
public enum KernelFaults {
    /// Why the kernel cannot make a rule: a few words for the timeline, and the whole reason.
    public struct Refusal: Sendable, Equatable {
        public var short: String
        public var detail: String
    }

    /// Why the kernel cannot make `rule`, or nil if it can (`netem`: this kernel has sch_netem).
    public static func unsupported(_ rule: LinkRule, netem: Bool) -> Refusal? {
        if !rule.dropKinds.isEmpty {
            return Refusal(short: "the kernel cannot see message kinds",
                           detail: "drop by message kind (\(rule.dropKinds.joined(separator: ","))) needs the node "
                               + "layer: the kernel sees datagrams, not message kinds")
        }
        let needsNetem = rule.delayMs > 0 || rule.jitterMs > 0 || rule.duplicatePercent > 0 || rule.reorderPercent > 0
        if needsNetem && !netem {
            return Refusal(short: "this kernel has no netem",
                           detail: "delay, jitter, duplication and reordering need tc's netem, and this kernel has "
                               + "no sch_netem (`tc qdisc add … netem` says the qdisc kind is unknown)")
        }
        return nil
    }

    /// The nftables table of one node: datagrams from each peer whose link into this node is blocked or
    /// lossy are dropped on the way in (so the sender's `sendto` does not fail, as a lossy network
    /// would not tell it either). `inbound`: (peer name, peer address, the folded rule of peer → node).
    public static func nftScript(inbound: [(name: String, address: String, rule: LinkRule)]) -> String {
        var lines = [
            // Create-then-delete makes the script work whether or not the table exists (one transaction).
            "table inet \(table)",
            "delete table inet \(table)",
            "table inet \(table) {",
            "  chain input {",
            "    type filter hook input priority -10; policy accept;",
        ]
        for link in inbound.sorted(by: { $0.name < $1.name }) {
            let from = "ip saddr \(link.address)"
            if link.rule.blocked {
                lines.append("    \(from) counter drop comment \"\(link.name) blocked\"")
            } else if link.rule.lossPercent > 0 {
                let threshold = min(lossScale, Int((link.rule.lossPercent * Double(lossScale) / 100).rounded()))
                lines.append("    \(from) numgen random mod \(lossScale) < \(threshold) counter drop "
                             + "comment \"\(link.name) loss \(FaultEngine.percent(link.rule.lossPercent))\"")
            }
        }
        lines += ["  }", "}"]
        return lines.joined(separator: "\n") + "\n"
    }

    /// The tc commands (for `tc -batch`) that shape one node's outgoing links: an htb root whose default
    /// class is unlimited, one class per shaped peer (its bandwidth, or unlimited) matched by destination
    /// address, and with netem a netem leaf for delay, jitter, duplication and reordering. Empty `outbound`
    /// (nothing to shape): no commands; the caller removes the root qdisc.
    public static func tcBatch(device: String, outbound: [(name: String, address: String, rule: LinkRule)]) -> [String] {
        let shaped = outbound.filter { shapes($0.rule) }.sorted { $0.name < $1.name }
        guard !shaped.isEmpty else { return [] }
        var lines = [
            "qdisc replace dev \(device) root handle 1: htb default 1",
            "class add dev \(device) parent 1: classid 1:1 htb rate \(unlimitedRate)",
        ]
        for (index, link) in shaped.enumerated() {
            let minor = 10 + index
            let rate = link.rule.bandwidthBytesPerSecond.map { "\(max(8, $0 * 8))bit" } ?? unlimitedRate
            lines.append("class add dev \(device) parent 1: classid 1:\(minor) htb rate \(rate) ceil \(rate)")
            if let netem = netemArguments(link.rule) {
                lines.append("qdisc add dev \(device) parent 1:\(minor) handle \(minor): netem \(netem)")
            }
            lines.append("filter add dev \(device) parent 1: protocol ip prio 1 u32 match ip dst \(link.address)/32 "
                         + "flowid 1:\(minor)")
        }
        return lines
    }

    /// The name of Faultline's nftables table in each namespace.
    public static let table = "faultline"
    static let lossScale = 10_000
    static let unlimitedRate = "10gbit"

    static func shapes(_ rule: LinkRule) -> Bool {
        rule.bandwidthBytesPerSecond != nil || netemArguments(rule) != nil
    }

    /// netem's arguments for a rule's delay, jitter, duplication and reordering (nil: none of them).
    static func netemArguments(_ rule: LinkRule) -> String? {
        guard rule.delayMs > 0 || rule.jitterMs > 0 || rule.duplicatePercent > 0 || rule.reorderPercent > 0 else {
            return nil
        }
        // netem reorders by sending some packets at once while the rest wait out the delay.
        let delay = rule.reorderPercent > 0 ? max(rule.delayMs, 10) : rule.delayMs
        var parts = ["delay \(Int(delay.rounded()))ms"]
        if rule.jitterMs > 0 { parts[0] += " \(Int(rule.jitterMs.rounded()))ms" }
        if rule.duplicatePercent > 0 { parts.append("duplicate \(FaultEngine.percent(rule.duplicatePercent))") }
        if rule.reorderPercent > 0 { parts.append("reorder \(FaultEngine.percent(rule.reorderPercent))") }
        return parts.joined(separator: " ")
    }
}

extension FaultEngine {
    /// "30%", "0.5%".
    static func percent(_ value: Double) -> String {
        value == value.rounded() ? "\(Int(value))%" : "\(value)%"
    }

    /// The folded rules of every link into `node` (inbound) or out of it (outbound), from a set of
    /// faults' links.
    public static func folded(_ faults: [[Link]], into node: String) -> [String: LinkRule] {
        var table: [String: LinkRule] = [:]
        for links in faults {
            for link in links where link.to == node {
                table[link.from] = (table[link.from] ?? .clear).combined(with: link.rule)
            }
        }
        return table
    }
}
