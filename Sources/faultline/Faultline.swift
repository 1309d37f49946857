import ArgumentParser
import Consensus
import Cluster
import Formats
import Foundation
import Liveness

@main
struct Faultline: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "faultline",
        abstract: "A testbed for BFT consensus: launch a local validator cluster, break it, measure it.",
        subcommands: [Demo.self, Up.self, Status.self, Load.self, Down.self, Fault.self, Run.self, ReportCommand.self, Export.self, Rehearse.self, StepCommand.self, Collect.self,
                      Bench.self, Simulate.self, Compare.self, Mutants.self, Observe.self, PrometheusCommand.self])

    /// Output line by line even into a pipe or file (a container's log, `kubectl logs`, a CI log): a
    /// collector or step killed at its deadline would otherwise lose what it printed.
    static func main() async {
        // The C stream `print` writes through, found by name: Swift 6 refuses to read C's global `stdout`.
        if let stream = dlsym(nil, "stdout")?.load(as: UnsafeMutablePointer<FILE>?.self) {
            setvbuf(stream, nil, _IOLBF, 0)
        }
        await main(nil)
    }
}

/// `--run DIR` shared by the commands that act on a running cluster.
struct RunOption: ParsableArguments {
    @Option(name: .long, help: "Run folder (default: $FAULTLINE_RUN, else .faultline/current).")
    var run: String?

    var dir: String { RunFolder.resolve(run) }
}

/// Exit codes a CI can read: 0 fine, 1 the cluster misbehaved, 2 bad input.
enum Exit {
    static func badInput(_ message: String) -> ExitCode {
        Terminal.error(message)
        return ExitCode(2)
    }

    static func failure(_ message: String) -> ExitCode {
        Terminal.error(message)
        return ExitCode(1)
    }
}

func loadTopology(_ path: String) throws -> Topology {
    do {
        return try Topology.load(path: path)
    } catch {
        throw Exit.badInput("\(error)")
    }
}

/// Parses the topology (exit 2 if it is wrong) and starts the cluster (exit 1 if it never finalizes).
func startCluster(topologyPath: String, runs: String, seed: UInt64? = nil, network: NetworkOptions = .init(),
                  consensus: ProtocolOption = .init()) async throws -> (Topology, ClusterOps.UpResult) {
    var parsed = try loadTopology(topologyPath)
    try network.apply(to: &parsed)
    consensus.apply(to: &parsed)
    do {
        return (parsed, try await ClusterOps.up(topology: parsed, runsRoot: runs, seed: seed))
    } catch {
        throw Exit.failure("\(error)")
    }
}

/// `--protocol`: the consensus protocol every validator runs, over the file's `[cluster] protocol`.
struct ProtocolOption: ParsableArguments {
    @Option(name: .customLong("protocol"),
            help: ArgumentHelp("The consensus protocol, over the file's [cluster] protocol.",
                               valueName: BFT.ProtocolName.allCases.map(\.rawValue).joined(separator: "|")))
    var consensusProtocol: BFT.ProtocolName?

    init() {}

    func apply(to topology: inout Topology) {
        if let consensusProtocol { topology.consensusProtocol = consensusProtocol }
    }
}

extension BFT.ProtocolName: ExpressibleByArgument {}

/// The topology, seed and runs folder, shared by the commands that start a cluster.
struct StartOptions: ParsableArguments {
    @Argument(help: "Topology file (TOML).")
    var topology: String = "Topologies/quickstart.toml"

    @Option(help: "Seed for keys and accounts (default: the topology's).")
    var seed: UInt64?

    @Option(help: "Folder that holds run folders.")
    var runs: String = ".faultline/runs"

    @OptionGroup var network: NetworkOptions
    @OptionGroup var consensus: ProtocolOption

    func start() async throws -> (Topology, ClusterOps.UpResult) {
        try await startCluster(topologyPath: topology, runs: runs, seed: seed, network: network, consensus: consensus)
    }
}

/// `--network` and `--layer`: where the nodes run and which layer makes link faults, over the file's
/// `[cluster] network` and `fault_layer`.
struct NetworkOptions: ParsableArguments {
    @Option(help: ArgumentHelp("loopback (every node on this host's loopback) or netns (each node in a network "
                               + "namespace of its own, on a bridge the run creates; needs root, ip and nft).",
                               valueName: "loopback|netns"))
    var network: NetworkMode?

    @Option(help: ArgumentHelp("Which layer makes link faults when a step does not say: node or kernel (needs netns; "
                               + "what the kernel cannot do falls back to node, and the report says so).",
                               valueName: "node|kernel"))
    var layer: FaultLayer?

    init() {}

    func apply(to topology: inout Topology) throws {
        if let network { topology.network = network }
        if let layer { topology.faultLayer = layer }
        if topology.faultLayer == .kernel, topology.network != .netns {
            throw Exit.badInput("--layer kernel needs the nodes in network namespaces (--network netns or "
                                + "[cluster] network = \"netns\")")
        }
        if topology.network == .netns, let problem = HostNetwork.unavailable() { throw Exit.badInput(problem) }
    }
}

struct Up: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start a cluster from a topology file and return once it finalizes blocks.")

    @OptionGroup var options: StartOptions

    @Flag(help: ArgumentHelp("Also point a Prometheus at the cluster (`faultline prometheus`): its config, targets "
                             + "and alert rules in the run folder, and Debian's `prometheus` started on loopback."))
    var prometheus = false

    static let tableNodesMax = 24

    func run() async throws {
        let (parsed, result) = try await options.start()
        print("cluster '\(parsed.name)' up: \(parsed.validators.count) validators, first block finalized "
              + "\(Terminal.ms(result.firstBlockMs)) after start")
        print("run folder: \(result.dir)")
        if let plan = result.manifest.network {
            print("network: netns — bridge \(plan.bridge) on \(plan.subnet); "
                  + plan.members.map { "\($0.name) \($0.address)" }.joined(separator: ", ")
                  + "; link faults by the \(result.manifest.defaultFaultLayer.rawValue) layer"
                  + (plan.netem == true ? "" : " (no netem on this kernel: delay, duplication and reordering stay with the node layer)"))
        }
        // A large cluster's table waits on every node's answer (8 s for 100 nodes sharing 2 cores): it is
        // one command away instead.
        if result.manifest.nodes.count <= Up.tableNodesMax {
            print(Terminal.statusTable(try await ClusterOps.states(dir: result.dir)))
        } else {
            print("\(result.manifest.nodes.count) nodes running; `faultline status` shows each one")
        }
        let endpoints = result.manifest.nodes.compactMap { node in node.rpcPort.map { "\(node.name) http://\(node.host):\($0)" } }
        if !endpoints.isEmpty { print("json-rpc: " + endpoints.joined(separator: ", ")) }
        if prometheus { try await PrometheusCommand.setUp(runDir: result.dir, start: true) }
        print("next: faultline status | faultline load --duration 10 | faultline fault kill NODE | faultline down")
    }
}

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show each node's height, round, peers and mempool.")

    @OptionGroup var runOption: RunOption

    func run() async throws {
        let states: [ClusterOps.NodeState]
        do {
            states = try await ClusterOps.states(dir: runOption.dir)
        } catch {
            throw Exit.badInput("\(error)")
        }
        print("run folder: \(runOption.dir)")
        print(Terminal.statusTable(states))
        if let url = PrometheusSetup.url(runDir: runOption.dir) { print("prometheus: \(url)") }
    }
}

struct Down: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Stop every node of a run and print its summary.")

    @OptionGroup var runOption: RunOption

    func run() async throws {
        let dir = runOption.dir
        let manifest: RunManifest
        do {
            manifest = try RunFolder.load(dir)
        } catch {
            throw Exit.badInput("\(error)")
        }
        try await ClusterOps.down(dir: dir)
        print("stopped \(manifest.nodes.count) nodes")
        let analysis = Analysis.run(dir: dir, manifest: manifest)
        print(Terminal.summary(analysis))
        if let external = analysis.external {
            if external.lostCount > 0 { throw Exit.failure("acknowledged writes missing on a member") }
            if !external.divergedMembers.isEmpty { throw Exit.failure("members hold different values at the end") }
            if external.linearizable == false { throw Exit.failure("the history of reads and writes is not linearizable") }
            return
        }
        if !analysis.agreement { throw Exit.failure("safety violated: nodes committed different blocks") }
        if !analysis.noCommittedBlockLost { throw Exit.failure("a restarted node lost committed blocks") }
        if !analysis.noDoubleSign { throw Exit.failure("a validator signed twice: \(analysis.doubleSignSummary)") }
        if !analysis.forks.isEmpty { throw Exit.failure("safety violated: \(analysis.forkSummary)") }
        if !analysis.tornTailsMissed.isEmpty {
            throw Exit.failure("\(analysis.tornTailsMissed.count) torn store tails were not cut off at the next start")
        }
    }
}

enum Analysis {
    static func run(dir: String, manifest: RunManifest) -> RunAnalysis {
        var analysis = RunAnalysis.analyze(nodeDirs: manifest.nodes.map { ($0.name, dir + "/" + $0.dir) },
                                           submissionsPath: dir + "/load/submissions.jsonl", rollupRecordsDir: dir + "/rollup",
                                           killsPath: dir + "/kills.jsonl")
        if let external = manifest.external {
            analysis.external = ExternalAnalysis.load(runDir: dir, system: external.system,
                                                      members: manifest.nodes.map { ($0.name, dir + "/" + $0.dir) })
        }
        return analysis
    }
}

/// The observer of a run of external nodes (started by `up`, stopped by `down`): probes, workload, final reading.
struct Observe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Watch a run of external nodes (started by up, stopped by down; not for direct use).",
        shouldDisplay: false)

    @OptionGroup var runOption: RunOption

    func run() async throws {
        do {
            try await Observer.run(runDir: runOption.dir)
        } catch {
            throw Exit.failure("observer: \(error)")
        }
    }
}
