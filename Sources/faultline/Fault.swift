import ArgumentParser
import Cluster
import Consensus
import Formats
import Foundation
import Ledger
import RPC
import Wire

/// Faults against a running cluster, from any shell script. Targets are node names, `all`, or
/// `key=value` labels (every node with that label), comma-separated.
struct Fault: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inject a fault into a running cluster (process, network, clock or load).",
        subcommands: [Kill.self, Pause.self, Resume.self, Restart.self, Partition.self, Heal.self, Loss.self,
                      Delay.self, Duplicate.self, Reorder.self, Bandwidth.self, Drop.self, Skew.self, Spam.self, Upgrade.self, RPCMode.self,
                      Byzantine.self, KillStormCommand.self])

    static func apply(_ action: FaultAction, _ runOption: RunOption, layer: FaultLayer? = nil) async throws {
        do {
            let id = try await FaultEngine.apply(action, dir: runOption.dir, layer: layer)
            let recorded = FaultEngine.timeline(runOption.dir).last { $0.id == id }
            print("\(action.name): applied (fault id \(id))" + (recorded?.layer.map { ", \($0) layer" } ?? ""))
            if let description = recorded?.description, recorded?.layer == "node", description.contains("layer: ") {
                print("  \(description)")
            }
        } catch let error as RunError {
            throw Exit.badInput(error.description)
        }
    }

    struct Kill: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "SIGKILL nodes (kill -9).")
        @OptionGroup var runOption: RunOption
        @Argument(help: "Nodes: names, all, or key=value labels.") var targets: [String]
        func run() async throws { try await Fault.apply(.kill(targets: targets), runOption) }
    }

    struct Pause: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "SIGSTOP nodes.")
        @OptionGroup var runOption: RunOption
        @Argument(help: "Nodes: names, all, or key=value labels.") var targets: [String]
        func run() async throws { try await Fault.apply(.pause(targets: targets), runOption) }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "SIGCONT paused nodes.")
        @OptionGroup var runOption: RunOption
        @Argument(help: "Nodes: names, all, or key=value labels.") var targets: [String]
        func run() async throws { try await Fault.apply(.resume(targets: targets), runOption) }
    }

    struct Restart: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start nodes again (SIGKILL first if running); each reloads its store and catches up.")
        @OptionGroup var runOption: RunOption
        @Argument(help: "Nodes: names, all, or key=value labels.") var targets: [String]
        func run() async throws { try await Fault.apply(.restart(targets: targets), runOption) }
    }

    struct Partition: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Split nodes into groups that cannot reach each other, e.g. `partition v1,v2 v3,v4`.")
        @OptionGroup var runOption: RunOption
        @Argument(help: "Two or more groups, each a comma-separated list of nodes or labels.") var groups: [String]
        @OptionGroup var layer: LayerOption
        func validate() throws {
            guard groups.count >= 2 else { throw ValidationError("a partition needs at least two groups") }
        }
        func run() async throws {
            try await Fault.apply(.partition(groups: groups.map { [$0] }), runOption, layer: layer.layer)
        }
    }

    struct Heal: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove link faults: all, or one by fault id.")
        @OptionGroup var runOption: RunOption
        @Argument(help: "A fault id (default: every link fault).") var id: String?
        func run() async throws { try await Fault.apply(.heal(id: id), runOption) }
    }

    /// `--from` / `--to` for the link faults (default: every link), and the layer that makes them.
    struct LinkScope: ParsableArguments {
        @Option(help: "Sending nodes (names, all, key=value).") var from: String = "all"
        @Option(help: "Receiving nodes (names, all, key=value).") var to: String = "all"
        @OptionGroup var layer: LayerOption
    }

    /// `--layer node|kernel` for link faults.
    struct LayerOption: ParsableArguments {
        @Option(help: ArgumentHelp(
            "Who makes the fault: node (the nodes' own UDP layer) or kernel (nftables and tc in each node's network "
                + "namespace; needs a run with network = netns). Default: the run's (kernel with netns, falling back "
                + "to node for what the kernel cannot do).", valueName: "node|kernel"))
        var layer: FaultLayer?
    }


    struct Loss: PercentLinkFault {
        static let configuration = CommandConfiguration(abstract: "Drop a percentage of datagrams on links.")
        static let what = "loss"
        @OptionGroup var runOption: RunOption
        @OptionGroup var scope: LinkScope
        @Argument(help: "Percent of datagrams dropped.") var percent: Double
        var rule: LinkRule { .init(lossPercent: percent) }
    }

    struct Delay: LinkFaultCommand {
        static let configuration = CommandConfiguration(abstract: "Delay datagrams on links, with jitter.")
        @OptionGroup var runOption: RunOption
        @OptionGroup var scope: LinkScope
        @Argument(help: "Delay in milliseconds.") var ms: Double
        @Option(help: "Jitter in milliseconds (uniform ±).") var jitter: Double = 0
        var rule: LinkRule { .init(delayMs: ms, jitterMs: jitter) }
        func validate() throws {
            guard ms >= 0, jitter >= 0, ms <= 60_000 else { throw ValidationError("delay must be 0...60000 ms") }
        }
    }

    struct Duplicate: PercentLinkFault {
        static let configuration = CommandConfiguration(abstract: "Send a percentage of datagrams twice.")
        static let what = "duplicate"
        @OptionGroup var runOption: RunOption
        @OptionGroup var scope: LinkScope
        @Argument(help: "Percent of datagrams duplicated.") var percent: Double
        var rule: LinkRule { .init(duplicatePercent: percent) }
    }

    struct Reorder: PercentLinkFault {
        static let configuration = CommandConfiguration(abstract: "Hold back a percentage of datagrams so they arrive late.")
        static let what = "reorder"
        @OptionGroup var runOption: RunOption
        @OptionGroup var scope: LinkScope
        @Argument(help: "Percent of datagrams reordered.") var percent: Double
        var rule: LinkRule { .init(reorderPercent: percent) }
    }

    struct Bandwidth: LinkFaultCommand {
        static let configuration = CommandConfiguration(abstract: "Cap each link's bandwidth (bytes per second).")
        @OptionGroup var runOption: RunOption
        @OptionGroup var scope: LinkScope
        @Argument(help: "Bytes per second.") var bytesPerSecond: Int
        var rule: LinkRule { .init(bandwidthBytesPerSecond: bytesPerSecond) }
        func validate() throws { guard bytesPerSecond > 0 else { throw ValidationError("bandwidth must be > 0") } }
    }

    struct Drop: LinkFaultCommand {
        static let configuration = CommandConfiguration(
            abstract: "Drop messages of some kinds on links, e.g. `drop precommit --from v2 --to v4`.")
        @OptionGroup var runOption: RunOption
        @OptionGroup var scope: LinkScope
        @Argument(help: "Message kinds: \(MessageKind.allCases.map(\.description).joined(separator: ", ")).")
        var kinds: [String]
        func validate() throws {
            for kind in kinds where MessageKind(name: kind) == nil {
                throw ValidationError("'\(kind)' is not a message kind; expected one of "
                                      + MessageKind.allCases.map(\.description).joined(separator: ", "))
            }
        }
        var rule: LinkRule { .init(dropKinds: kinds) }
    }

    struct Byzantine: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make validators misbehave on purpose; 'off' makes them honest again.",
            discussion: """
                MODES is a comma-separated list of: \(ByzantineMode.names).
                Honest nodes reject and count each kind (the drops column of the report, reject_* on
                the drops event); two conflicting votes become evidence committed in a block.
                """)
        @OptionGroup var runOption: RunOption
        @Argument(help: "Validators: names, all, or key=value labels.") var targets: String
        @Argument(help: "Comma-separated modes, or off.") var modes: String

        func validate() throws {
            _ = try parsedModes()
        }

        func parsedModes() throws -> [ByzantineMode] {
            if modes == "off" { return [] }
            return try modes.split(separator: ",").map { name in
                guard let mode = ByzantineMode(rawValue: String(name)) else {
                    throw ValidationError("'\(name)' is not a byzantine mode; expected one of \(ByzantineMode.names), or off")
                }
                return mode
            }
        }

        func run() async throws {
            try await Fault.apply(.byzantine(targets: [targets], modes: try parsedModes()), runOption)
        }
    }

    struct KillStormCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "kill-storm",
            abstract: "SIGKILL nodes at random moments, many times, restarting each after a random pause.",
            discussion: """
                Runs in the foreground until COUNT kills or SECONDS have passed, then restarts what it
                killed. Each kill and restart goes to kills.jsonl in the run folder; `faultline down` and
                `faultline report` then check that no committed block was lost and no validator signed
                two values for one height/round/step (from each validator's signature log).
                """)
        @OptionGroup var runOption: RunOption
        @Argument(help: "Nodes: names, all, or key=value labels.") var targets: String
        @Option(help: "How many SIGKILLs.") var count: Int = 120
        @Option(help: "Spread the kills over this many seconds.") var seconds: Double = 60
        @Option(name: .customLong("down-ms"), help: "Longest time a killed node stays down (ms).") var downMs: Int = 1_000
        @Option(name: .customLong("down-max"), help: "At most this many targets down at once.") var downMax: Int = 1
        @Option(name: .customLong("torn-percent"),
                help: "After this share of kills, append a torn record to the victim's block store.")
        var tornPercent: Double = 0
        @Option(help: "Seed for the kill times and victims.") var seed: UInt64 = 1

        func validate() throws {
            guard (1...KillStormSpec.countMax).contains(count) else {
                throw ValidationError("--count must be 1...\(KillStormSpec.countMax)")
            }
            guard seconds > 0, seconds <= 3_600 else { throw ValidationError("--seconds must be in (0, 3600]") }
            guard (10...600_000).contains(downMs) else { throw ValidationError("--down-ms must be 10...600000") }
            guard downMax >= 1 else { throw ValidationError("--down-max must be at least 1") }
            guard (0...100).contains(tornPercent) else { throw ValidationError("--torn-percent must be 0...100") }
        }

        func run() async throws {
            let spec = KillStormSpec(targets: [targets], count: count, seconds: seconds, downMsMax: downMs, downMax: downMax,
                                     tornPercent: tornPercent)
            let id = "kill_storm-\(UInt64(Date().timeIntervalSince1970 * 1000) % 100_000_000)"
            do {
                let stats = try await KillStorm.run(spec, dir: runOption.dir, id: id, seed: seed,
                                                    onEvent: { line in print(line) })
                print(String(format: "kill storm %@: %d kills, %d restarts, %d torn store tails in %.1f s", id,
                             stats.kills, stats.restarts, stats.tornTails, stats.seconds))
            } catch let error as RunError {
                throw Exit.badInput(error.description)
            }
        }
    }

    struct Skew: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Skew nodes' protocol clocks (block timestamps) by milliseconds; 0 ends the skew.")
        @OptionGroup var runOption: RunOption
        @Argument(help: "Nodes: names, all, or key=value labels.") var targets: String
        @Argument(help: "Milliseconds (may be negative).") var ms: Int64
        func run() async throws { try await Fault.apply(.skew(targets: [targets], ms: ms), runOption) }
    }

    struct Upgrade: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Restart nodes on another binary version (SIGTERM, new config, start).",
            discussion: """
                --version is the newest execution rules the new binary implements; --version-min the oldest \
                it keeps (default: unchanged, capped at --version). Without an upgrade plan in genesis, a \
                version-2 binary applies v2 rules at once: nodes on other versions compute other state roots. \
                --fork-id puts the node on another fork: its peers refuse it at the handshake.
                """)
        @OptionGroup var runOption: RunOption
        @Argument(help: "Nodes: names, all, or key=value labels.") var targets: [String]
        @Option(help: "Newest rules version of the new binary (1...\(Rules.newestVersion)).") var version: UInt16
        @Option(help: "Oldest rules version it still implements.") var versionMin: UInt16?
        @Option(help: "Fork id to restart on.") var forkId: UInt32?

        func validate() throws {
            guard (1...Rules.newestVersion).contains(version) else {
                throw ValidationError("--version must be 1...\(Rules.newestVersion), got \(version)")
            }
            if let versionMin, !(1...version).contains(versionMin) {
                throw ValidationError("--version-min must be 1...\(version), got \(versionMin)")
            }
        }

        func run() async throws {
            try await Fault.apply(.upgrade(targets: targets, version: version, versionMin: versionMin, forkId: forkId),
                                  runOption)
            // Say how each node came back: running on which rules, or refusing to start (and why).
            let dir = runOption.dir
            guard let manifest = try? RunFolder.load(dir), let names = try? FaultEngine.resolve(targets, in: manifest),
                  let states = try? await ClusterOps.states(dir: dir) else { return }
            for state in states where names.contains(state.node.name) {
                if let status = state.status {
                    print("  \(state.node.name): running, rules v\(status.rulesApplied) now "
                          + "(binary v\(status.rulesVersionMin)...v\(status.rulesVersionMax), fork id \(status.forkId))"
                          + (status.stopped.map { "; stopped: \($0)" } ?? ""))
                } else {
                    let log = (try? String(contentsOfFile: dir + "/" + state.node.dir + "/node.log", encoding: .utf8)) ?? ""
                    let last = log.split(separator: "\n").last { $0.contains("refusing") || $0.contains("critical") }
                        ?? log.split(separator: "\n").last ?? ""
                    print("  \(state.node.name): \(state.alive ? "not answering yet" : "exited"): \(last)")
                }
            }
        }
    }

    struct RPCMode: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rpc",
            abstract: "Make rpc nodes misbehave as upstreams: down, errors, latency, frozen, lag, wrong; ok ends it.",
            discussion: """
                down: the JSON-RPC port refuses connections. errors: --status (429, 5xx; 200 for a JSON-RPC \
                internal error) on --percent of requests. latency: --ms added to every answer and --tail-ms to \
                --tail-percent of them. frozen: answers stuck at the head they had. lag: answers --lag-blocks \
                behind. wrong: made-up balances, nonces and block hashes on --percent of requests.
                """)
        @OptionGroup var runOption: RunOption
        @Argument(help: "rpc nodes: names, all, or key=value labels.") var targets: String
        @Option(help: "One of \(UpstreamFault.modes.joined(separator: ", ")).") var mode: String
        @Option(help: "Share of requests affected (errors, wrong).") var percent: Double = 100
        @Option(help: "HTTP status for errors (200: JSON-RPC error).") var status: Int = 503
        @Option(help: "Milliseconds added to every answer (latency).") var ms: UInt64 = 0
        @Option(help: "Share of answers in the slow tail (latency).") var tailPercent: Double = 0
        @Option(help: "Milliseconds added to the slow tail.") var tailMs: UInt64 = 0
        @Option(help: "Blocks behind (lag).") var lagBlocks: UInt64 = 0

        var fault: UpstreamFault {
            UpstreamFault(mode: mode, percent: percent, status: status, ms: ms, tailPercent: tailPercent, tailMs: tailMs,
                          lagBlocks: lagBlocks)
        }

        func validate() throws {
            if let problem = fault.problem { throw ValidationError(problem) }
        }

        func run() async throws {
            let manifest: RunManifest
            do { manifest = try RunFolder.load(runOption.dir) } catch { throw Exit.badInput("\(error)") }
            let names = (try? FaultEngine.resolve([targets], in: manifest)) ?? []
            let selected = manifest.nodes.filter { names.contains($0.name) && $0.role == "rpc" }
            let others = names.filter { name in !selected.contains { $0.name == name } }
            let targets = others.isEmpty ? targets : selected.map(\.name).joined(separator: ",")
            guard !selected.isEmpty else { throw Exit.badInput("no rpc node among '\(self.targets)'") }
            try await Fault.apply(.rpc(targets: [targets], fault: fault), runOption)
        }
    }

    struct Spam: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send signed transfers at a rate for a while (runs in the foreground, with progress).")
        @OptionGroup var runOption: RunOption
        @Option(help: "Transactions per second.") var rate: Int
        @Option(help: "Seconds.") var duration: Double
        func run() async throws {
            let dir = runOption.dir
            let manifest: RunManifest
            do { manifest = try RunFolder.load(dir) } catch { throw Exit.badInput("\(error)") }
            let id = "spam-\(UInt64(Date().timeIntervalSince1970 * 1000) % 100_000_000)"
            try FaultEngine.recordWindow(dir, id: id, action: "spam", description: "spam \(rate) tx/s", start: true)
            let stats = try await LoadRunner.run(dir: dir, manifest: manifest, rate: rate, seconds: duration)
            try FaultEngine.recordWindow(dir, id: id, action: "spam", description: "spam \(rate) tx/s", start: false)
            print("spam: sent \(stats.sent) transfers in \(String(format: "%.1f", stats.seconds)) s")
        }
    }
}

/// A fault on links: a rule applied to every link from `--from` to `--to`.
protocol LinkFaultCommand: AsyncParsableCommand {
    var runOption: RunOption { get }
    var scope: Fault.LinkScope { get }
    var rule: LinkRule { get }
}

extension LinkFaultCommand {
    func run() async throws {
        try await Fault.apply(.link(rule: rule, from: [scope.from], to: [scope.to]), runOption, layer: scope.layer.layer)
    }
}

/// A link fault given as a percentage of datagrams.
protocol PercentLinkFault: LinkFaultCommand {
    static var what: String { get }
    var percent: Double { get }
}

extension PercentLinkFault {
    func validate() throws {
        guard (0...100).contains(percent) else { throw ValidationError("\(Self.what) must be a percentage 0...100") }
    }
}

extension FaultLayer: ExpressibleByArgument {}
extension NetworkMode: ExpressibleByArgument {}
