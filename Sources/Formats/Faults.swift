import Consensus
import RPC
import Wire

/// One fault from the shared vocabulary (scenario files, `faultline fault`, and later the simulator).
public enum FaultAction: Sendable, Equatable {
    case kill(targets: [String])
    case pause(targets: [String])
    case resume(targets: [String])
    case restart(targets: [String])
    /// Nodes in different groups cannot reach each other; nodes in no group are untouched.
    case partition(groups: [[String]])
    /// A rule on every directed link from a node in `from` to a node in `to`.
    case link(rule: LinkRule, from: [String], to: [String])
    case skew(targets: [String], ms: Int64)
    /// Clear link faults: all, or those started by one fault id.
    case heal(id: String?)
    /// Restart nodes on another binary: rules versions `versionMin...version`, and optionally a new fork id.
    case upgrade(targets: [String], version: UInt16, versionMin: UInt16?, forkId: UInt32?)
    /// An upstream fault mode on rpc nodes (mode "ok" ends it).
    case rpc(targets: [String], fault: UpstreamFault)
    /// Misbehaviour on validators (no modes: honest again).
    case byzantine(targets: [String], modes: [ByzantineMode])

    public var name: String {
        switch self {
        case .kill: return "kill"
        case .pause: return "pause"
        case .resume: return "resume"
        case .restart: return "restart"
        case .partition: return "partition"
        case .link(let rule, _, _):
            if rule.blocked { return "isolate" }
            if !rule.dropKinds.isEmpty { return "drop" }
            return "link"
        case .skew: return "skew"
        case .heal: return "heal"
        case .upgrade: return "upgrade"
        case .rpc: return "rpc"
        case .byzantine: return "byzantine"
        }
    }
}

/// A fault window as recorded in the run's `faults.jsonl` timeline.
public struct FaultEvent: Codable, Sendable, Equatable {
    public var t: UInt64
    /// "start" or "end".
    public var event: String
    public var id: String
    public var action: String
    public var description: String
    public var nodes: [String]
    /// The layer that made a link fault: "node" or "kernel" (absent for other faults).
    public var layer: String?
    /// How late the fault may really have begun, when the window is the schedule's and not what was
    /// seen to happen (a remote run: Chaos Mesh applies the fault); nil for windows recorded as applied.
    public var slackMs: UInt64?

    public init(t: UInt64, event: String, id: String, action: String, description: String, nodes: [String]) {
        self.t = t
        self.event = event
        self.id = id
        self.action = action
        self.description = description
        self.nodes = nodes
    }
}

/// The fault vocabulary's rules that need no running cluster: which nodes a selector names, which
/// directed links a partition or link fault sets, and how they fold into one node's table. The real
/// cluster (`Cluster`) and the simulator apply faults through these.
public enum FaultEngine {
    /// One directed link's rule within a fault.
    public struct Link: Codable, Sendable {
        public var from: String
        public var to: String
        public var rule: LinkRule

        public init(from: String, to: String, rule: LinkRule) {
            self.from = from
            self.to = to
            self.rule = rule
        }
    }

    /// `resolve` over any list of named, labelled nodes (the simulator's).
    public static func resolve(_ selectors: [String], nodes: [(name: String, labels: [String: String])]) throws -> [String] {
        var out: [String] = []
        for selector in selectors.flatMap({ $0.split(separator: ",").map(String.init) }) where !selector.isEmpty {
            let matched: [String]
            if selector == "all" {
                matched = nodes.map(\.name)
            } else if let equals = selector.firstIndex(of: "=") {
                let key = String(selector[..<equals])
                let value = String(selector[selector.index(after: equals)...])
                matched = nodes.filter { $0.labels[key] == value }.map(\.name)
                if matched.isEmpty { throw RunError("no node has the label \(key)=\(value)") }
            } else {
                guard nodes.contains(where: { $0.name == selector }) else {
                    throw RunError("no node named '\(selector)'; nodes are "
                                   + nodes.map(\.name).joined(separator: ", "))
                }
                matched = [selector]
            }
            for name in matched where !out.contains(name) { out.append(name) }
        }
        if out.isEmpty { throw RunError("no nodes selected by '\(selectors.joined(separator: " "))'") }
        return out
    }

    /// The directed links a partition or link fault sets, and its description (nil for other actions).
    public static func linkFault(_ action: FaultAction, nodes: [(name: String, labels: [String: String])]) throws
        -> (description: String, links: [Link])? {
        switch action {
        case .partition(let groups):
            // A node named by an earlier group is not in a later one: `[["leader"], ["all"]]` is the leader
            // against everyone else.
            var taken = Set<String>()
            let resolved = try groups.map { group in
                let names = try resolve(group, nodes: nodes).filter { !taken.contains($0) }
                taken.formUnion(names)
                return names
            }.filter { !$0.isEmpty }
            guard resolved.count >= 2 else {
                throw RunError("a partition needs two non-empty groups; got " + groups.map { $0.joined(separator: ",") }
                                .joined(separator: " | "))
            }
            var links: [Link] = []
            for (a, groupA) in resolved.enumerated() {
                for (b, groupB) in resolved.enumerated() where a != b {
                    for from in groupA { for to in groupB { links.append(Link(from: from, to: to, rule: .init(blocked: true))) } }
                }
            }
            return ("partition " + resolved.map { $0.joined(separator: ",") }.joined(separator: " | "), links)
        case .link(let rule, let from, let to):
            let sources = try resolve(from, nodes: nodes)
            let targets = try resolve(to, nodes: nodes)
            let links = sources.flatMap { source in
                targets.filter { $0 != source }.map { Link(from: source, to: $0, rule: rule) }
            }
            return ("\(describe(rule)) \(sources.joined(separator: ",")) -> \(targets.joined(separator: ","))", links)
        default:
            return nil
        }
    }

    /// One node's outgoing link rules: the fold of every active fault's links from it.
    public static func linkTable(of node: String, faults: [[Link]]) -> LinkFaultTable {
        var table: [String: LinkRule] = [:]
        for links in faults {
            for link in links where link.from == node {
                table[link.to] = (table[link.to] ?? .clear).combined(with: link.rule)
            }
        }
        return LinkFaultTable(links: table)
    }

    public static func describe(_ rule: LinkRule) -> String {
        var parts: [String] = []
        if rule.blocked { parts.append("blocked") }
        if rule.lossPercent > 0 { parts.append("loss \(Int(rule.lossPercent))%") }
        if rule.delayMs > 0 || rule.jitterMs > 0 { parts.append("delay \(Int(rule.delayMs))±\(Int(rule.jitterMs)) ms") }
        if rule.duplicatePercent > 0 { parts.append("duplicate \(Int(rule.duplicatePercent))%") }
        if rule.reorderPercent > 0 { parts.append("reorder \(Int(rule.reorderPercent))%") }
        if let bandwidth = rule.bandwidthBytesPerSecond { parts.append("bandwidth \(bandwidth) B/s") }
        if !rule.dropKinds.isEmpty { parts.append("drop \(rule.dropKinds.joined(separator: ","))") }
        return parts.joined(separator: ", ")
    }
}
