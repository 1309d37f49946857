import Foundation
import Formats
import Sodium
import Wire
import Yams

/// `faultline export kubernetes`: a topology and its scenario as plain Kubernetes objects (a Namespace,
/// a Secret with the node keys and the run token, a ConfigMap with genesis and the node configs, per
/// role and label set a StatefulSet behind a headless Service), the schedule as a Chaos Mesh Workflow
/// (`ChaosSchedule`), a collector Job that writes the same reports as a local run, a kustomization and
/// a Containerfile. Every node finds its peers by the DNS names the headless Services give pods.
public enum KubernetesExport {
    public struct Options: Sendable {
        public var image: String
        public var namespace: String
        public var cpuRequest = "500m"
        public var cpuLimit = "2"
        public var memoryRequest = "256Mi"
        public var memoryLimit = "1Gi"
        public var storage = "1Gi"

        public init(image: String, namespace: String) {
            self.image = image
            self.namespace = namespace
        }
    }

    /// Where a node of the topology runs: pod `set-ordinal` of StatefulSet `set`.
    public struct Placement: Sendable, Equatable {
        public var node: String
        public var role: String
        public var set: String
        public var ordinal: Int
        public var pod: String { "\(set)-\(ordinal)" }
        /// The pod's name in its namespace (the headless Service's record), resolved through the pod's DNS search path.
        public var dnsName: String { "\(pod).\(set)" }
    }

    public struct Result: Sendable {
        /// File name in the output folder → contents.
        public var files: [(name: String, text: String)]
        public var placements: [Placement]
        /// How each step of the schedule runs there.
        public var routes: [ChaosSchedule.Route]
    }

    /// Mount points in every pod.
    public static let runDir = "/etc/faultline/run"
    public static let dataDir = "/var/lib/faultline"
    public static let appLabel = "app.kubernetes.io/name"
    public static let setLabel = "app.kubernetes.io/component"
    public static let nodeLabel = "faultline.dev/node"

    public static func make(_ scenario: Scenario, options: Options, timeMs: UInt64) throws -> Result {
        let topology = scenario.topology
        if let problem = HostName.problem(options.namespace), !options.namespace.contains(".") {
            throw RunError("--namespace: \(problem)")
        }
        guard topology.external == nil, !topology.nodes.contains(where: { $0.role == "external" }) else {
            throw RunError("\(topology.path): external nodes ([external]) run only on this machine for now: export "
                           + "needs Faultline's own nodes")
        }
        let placements = try place(topology)
        let seed = topology.seed
        var entries: [RunManifest.NodeEntry] = []
        for (node, placement) in zip(topology.nodes, placements) {
            let key = ClusterSetup.nodeKey(chainId: topology.chainId, seed: seed, name: node.keyName)
            let servesRPC = node.role == "rpc" || node.role == "gateway"
            entries.append(.init(name: node.name, role: node.role, stake: node.stake, labels: node.labels,
                                 publicKey: key.publicKey.hex, host: placement.dnsName, gossipPort: HostNetwork.gossipPort,
                                 votePort: topology.limits.lanes ? HostNetwork.votePort : 0,
                                 controlPort: HostNetwork.controlPort, dir: "nodes/\(node.name)",
                                 rpcPort: servesRPC ? HostNetwork.rpcPort : nil, namespace: nil))
        }
        let genesis = ClusterSetup.genesis(topology: topology, seed: seed, timeMs: timeMs)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        func json<T: Encodable>(_ value: T) throws -> String { String(decoding: try encoder.encode(value), as: UTF8.self) + "\n" }

        // The ConfigMap: the run folder's shared files, and per pod its node.json (and gateway.json).
        var configData: [(key: String, path: String, text: String)] = [
            ("run.json", "run.json", try json(RunManifest(
                name: topology.name, chainId: topology.chainId, seed: seed, topologyPath: "topology.toml",
                createdAtMs: timeMs, nodes: entries, accounts: topology.load.accounts,
                load: .init(rateTxPerSecond: topology.load.rateTxPerSecond, durationSeconds: topology.load.durationSeconds,
                            l2: topology.load.l2 ? true : nil),
                network: nil, faultLayer: .node, external: nil, remote: true))),
            ("genesis.json", "genesis.json", try json(genesis)),
            ("topology.toml", "topology.toml", (try? String(contentsOfFile: topology.path, encoding: .utf8)) ?? ""),
            // Gateways gossip with no one: every other node is everyone's peer.
            ("peers.json", "peers.json", try json(entries.filter { $0.role != "gateway" }.map {
                NodeConfig.PeerEntry(name: $0.name, publicKey: $0.publicKey, host: $0.host, port: $0.gossipPort,
                                     votePort: $0.votePort)
            })),
        ]
        var secretData: [(key: String, path: String, text: String)] = [
            ("token", "token", Hex.encode(SecureRandom.bytes(32)) + "\n"),
        ]
        for (index, placement) in placements.enumerated() {
            var config = RunFolder.nodeConfig(topology, index: index, entries: entries)
            config.host = "0.0.0.0" // every address of the pod; peers reach it by its DNS name
            if placement.role != "gateway" {
                config.peers = []
                config.peersFile = "../../peers.json"
                config.refusedWaitsForUpgrade = true
            }
            config.dataDir = dataDir + "/data"
            config.eventsFile = dataDir + "/events.jsonl"
            configData.append(("node.\(placement.pod).json", "nodes/\(placement.pod)/node.json", try json(config)))
            if placement.role == "gateway" {
                configData.append(("gateway.\(placement.pod).json", "nodes/\(placement.pod)/gateway.json",
                                   try json(RunFolder.gatewayFile(topology, entries: entries, seed: seed &+ UInt64(index)))))
            }
            let key = ClusterSetup.nodeKey(chainId: topology.chainId, seed: seed, name: topology.nodes[index].keyName)
            secretData.append(("key.\(placement.pod)", "nodes/\(placement.pod)/key", key.seed.hex + "\n"))
        }
        let bytes = configData.reduce(0) { $0 + $1.text.utf8.count }
        guard bytes < 1_000_000 else {
            throw RunError("the configs come to \(bytes) bytes, over a ConfigMap's 1 MiB: fewer accounts ([load] accounts) "
                           + "or nodes")
        }

        let ns = options.namespace
        var files: [(name: String, text: String)] = []
        func emit(_ name: String, _ objects: [Node]) throws {
            files.append((name, try objects.map { try Yams.serialize(node: quoted($0), width: -1) }.joined(separator: "---\n")))
        }
        try emit("namespace.yaml", [object("v1", "Namespace", name: ns, namespace: nil, labels: [(appLabel, "faultline")], [])])
        try emit("secret.yaml", [object("v1", "Secret", name: "faultline-keys", namespace: ns, labels: [(appLabel, "faultline")], [
            ("type", "Opaque"),
            ("stringData", map(secretData.map { ($0.key, literal($0.text)) })),
        ])])
        try emit("configmap.yaml", [object("v1", "ConfigMap", name: "faultline-run", namespace: ns,
                                           labels: [(appLabel, "faultline")], [
            ("data", map(configData.map { ($0.key, literal($0.text)) })),
        ])])
        let sets = Dictionary(grouping: placements, by: \.set)
        var setNames: [String] = []
        for placement in placements where !setNames.contains(placement.set) { setNames.append(placement.set) }
        for set in setNames {
            let pods = sets[set]!
            let node = topology.nodes.first { $0.name == pods[0].node }!
            try emit("\(set).yaml", [
                service(set, namespace: ns, lanes: topology.limits.lanes, rpc: entries.first { $0.name == node.name }!.rpcPort != nil),
                statefulSet(set, pods: pods, node: node, options: options,
                            configItems: configData.filter { item in
                                !item.path.hasPrefix("nodes/") || pods.contains { item.path.hasPrefix("nodes/\($0.pod)/") }
                            }.map { ($0.key, $0.path) },
                            secretItems: secretData.filter { item in
                                !item.path.hasPrefix("nodes/") || pods.contains { item.path.hasPrefix("nodes/\($0.pod)/") }
                            }.map { ($0.key, $0.path) }),
            ])
        }
        let schedule = try ChaosSchedule.make(scenario, placements: placements, namespace: ns, image: options.image)
        try emit("workflow.yaml", [schedule.workflow])
        try emit("collector.yaml", [collector(scenario, namespace: ns, image: options.image,
                                              validatorCores: try cores(options.cpuLimit))])
        let resources = ["namespace.yaml", "secret.yaml", "configmap.yaml"] + setNames.map { "\($0).yaml" }
            + ["collector.yaml", "workflow.yaml"]
        try emit("kustomization.yaml", [map([
            ("apiVersion", "kustomize.config.k8s.io/v1beta1"), ("kind", "Kustomization"),
            ("resources", Node(resources.map { Node($0) })),
        ])])
        files.append(("Containerfile", containerfile))
        return Result(files: files, placements: placements, routes: schedule.routes)
    }

    /// One StatefulSet per role and label set (pods of a StatefulSet share one template, labels included),
    /// named after the role, plus the label values when a role has several sets.
    static func place(_ topology: Topology) throws -> [Placement] {
        func labelKey(_ node: Topology.Node) -> String {
            node.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        }
        var out: [Placement] = []
        var counts: [String: Int] = [:]
        for node in topology.nodes {
            let kinds = Set(topology.nodes.filter { $0.role == node.role }.map(labelKey))
            var set = node.role
            if kinds.count > 1 {
                set += "-" + node.labels.sorted { $0.key < $1.key }.map(\.value).joined(separator: "-")
            }
            set = dnsLabel(set)
            if let problem = HostName.problem(set) { throw RunError("node \(node.name): set name \(problem)") }
            out.append(Placement(node: node.name, role: node.role, set: set, ordinal: counts[set, default: 0]))
            counts[set, default: 0] += 1
        }
        return out
    }

    /// Lower case letters, digits and hyphens (RFC 1123 label), at most 52 characters (a StatefulSet's
    /// pods carry a controller-revision-hash label built from its name).
    static func dnsLabel(_ text: String) -> String {
        var out = String(text.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "-" })
        while out.contains("--") { out = out.replacingOccurrences(of: "--", with: "-") }
        out = String(out.trimmingCharacters(in: CharacterSet(charactersIn: "-")).prefix(52))
        return out.isEmpty ? "x" : out
    }

    // MARK: objects

    static func service(_ set: String, namespace: String, lanes: Bool, rpc: Bool) -> Node {
        var ports: [Node] = [map([("name", "gossip"), ("protocol", "UDP"), ("port", int(HostNetwork.gossipPort))])]
        if lanes { ports.append(map([("name", "votes"), ("protocol", "UDP"), ("port", int(HostNetwork.votePort))])) }
        ports.append(map([("name", "control"), ("protocol", "TCP"), ("port", int(HostNetwork.controlPort))]))
        if rpc { ports.append(map([("name", "json-rpc"), ("protocol", "TCP"), ("port", int(HostNetwork.rpcPort))])) }
        return object("v1", "Service", name: set, namespace: namespace, labels: [(appLabel, "faultline"), (setLabel, Node(set))], [
            ("spec", map([
                ("clusterIP", "None"),
                // Peers must find a pod before it is ready: readiness needs its peers.
                ("publishNotReadyAddresses", bool(true)),
                ("selector", map([(appLabel, "faultline"), (setLabel, Node(set))])),
                ("ports", Node(ports)),
            ])),
        ])
    }

    static func statefulSet(_ set: String, pods: [Placement], node: Topology.Node, options: Options,
                            configItems: [(String, String)], secretItems: [(String, String)]) -> Node {
        let labels: [(String, Node)] = [(appLabel, "faultline"), (setLabel, Node(set)), ("faultline.dev/role", Node(node.role))]
            + node.labels.sorted { $0.key < $1.key }.map { ("faultline.dev/\(dnsLabel($0.key))", Node(dnsLabel($0.value))) }
        var ports: [Node] = [map([("name", "gossip"), ("containerPort", int(HostNetwork.gossipPort)), ("protocol", "UDP")])]
        ports.append(map([("name", "votes"), ("containerPort", int(HostNetwork.votePort)), ("protocol", "UDP")]))
        ports.append(map([("name", "control"), ("containerPort", int(HostNetwork.controlPort)), ("protocol", "TCP")]))
        if node.role == "rpc" || node.role == "gateway" {
            ports.append(map([("name", "json-rpc"), ("containerPort", int(HostNetwork.rpcPort)), ("protocol", "TCP")]))
        }
        var podSpec: [(String, Node)] = [
            ("terminationGracePeriodSeconds", 10),
            ("containers", Node([map([
                ("name", "node"),
                ("image", Node(options.image)),
                // The image's entrypoint is tini: the node is not PID 1, so SIGSTOP (pause) reaches it.
                ("args", Node(["faultline-node", "--config", Node("\(runDir)/nodes/$(POD_NAME)/node.json")])),
                ("env", Node([map([("name", "POD_NAME"), ("valueFrom", map([("fieldRef", map([("fieldPath", "metadata.name")]))]))])])),
                ("ports", Node(ports)),
                ("readinessProbe", map([
                    ("tcpSocket", map([("port", "control")])), ("periodSeconds", 2), ("failureThreshold", 3),
                ])),
                ("resources", map([
                    ("requests", map([("cpu", Node(options.cpuRequest)), ("memory", Node(options.memoryRequest))])),
                    ("limits", map([("cpu", Node(options.cpuLimit)), ("memory", Node(options.memoryLimit))])),
                ])),
                ("volumeMounts", Node([
                    map([("name", "run"), ("mountPath", Node(runDir)), ("readOnly", bool(true))]),
                    map([("name", "data"), ("mountPath", Node(dataDir))]),
                ])),
            ])])),
            ("volumes", Node([runVolume(configItems: configItems, secretItems: secretItems)])),
            // Spread the set over machines: nodes of a cluster under test should not share a CPU.
            ("topologySpreadConstraints", Node([map([
                ("maxSkew", 1), ("topologyKey", "kubernetes.io/hostname"), ("whenUnsatisfiable", "ScheduleAnyway"),
                ("labelSelector", map([("matchLabels", map([(appLabel, "faultline"), (setLabel, Node(set))]))])),
            ])])),
        ]
        // A label naming a region or zone places the set there where the cluster has it.
        let placement = node.labels.sorted { $0.key < $1.key }.compactMap { key, value -> Node? in
            let wellKnown = key == "zone" ? "topology.kubernetes.io/zone" : key == "region" ? "topology.kubernetes.io/region" : nil
            return wellKnown.map { map([("key", Node($0)), ("operator", "In"), ("values", Node([Node(value)]))]) }
        }
        if !placement.isEmpty {
            podSpec.append(("affinity", map([("nodeAffinity", map([
                ("preferredDuringSchedulingIgnoredDuringExecution", Node([map([
                    ("weight", 100), ("preference", map([("matchExpressions", Node(placement))])),
                ])])),
            ]))])))
        }
        return object("apps/v1", "StatefulSet", name: set, namespace: options.namespace, labels: labels, [
            ("spec", map([
                ("serviceName", Node(set)),
                ("replicas", int(pods.count)),
                ("podManagementPolicy", "Parallel"),
                ("selector", map([("matchLabels", map([(appLabel, "faultline"), (setLabel, Node(set))]))])),
                ("template", map([
                    ("metadata", map([("labels", map(labels))])),
                    ("spec", map(podSpec)),
                ])),
                ("volumeClaimTemplates", Node([map([
                    ("metadata", map([("name", "data")])),
                    ("spec", map([
                        ("accessModes", Node([Node("ReadWriteOnce")])),
                        ("resources", map([("requests", map([("storage", Node(options.storage))]))])),
                    ])),
                ])])),
            ])),
        ])
    }

    /// The run folder as a pod sees it: the ConfigMap's and the Secret's items at their paths.
    static func runVolume(configItems: [(String, String)], secretItems: [(String, String)]) -> Node {
        map([("name", "run"), ("projected", map([
            ("defaultMode", 0o440),
            ("sources", Node([
                map([("configMap", map([("name", "faultline-run"), ("items", Node(configItems.map {
                    map([("key", Node($0.0)), ("path", Node($0.1))])
                }))]))]),
                map([("secret", map([("name", "faultline-keys"), ("items", Node(secretItems.map {
                    map([("key", Node($0.0)), ("path", Node($0.1))])
                }))]))]),
            ])),
        ]))])
    }

    /// A CPU quantity (`2`, `1.5`, `1500m`) in cores.
    static func cores(_ quantity: String) throws -> Double {
        let value = quantity.hasSuffix("m") ? Double(quantity.dropLast()).map { $0 / 1000 } : Double(quantity)
        guard let value, value > 0 else {
            throw RunError("--cpu: the limit '\(quantity)' is not a CPU quantity (cores, e.g. 2 or 1.5, or millicores, e.g. 1500m)")
        }
        return value
    }

    /// The collector: waits for the cluster, sends the topology's load, waits out the schedule, gathers
    /// every node's event log over its control port and writes report.json, junit.xml and report.html
    /// as a local run does; then keeps them for `kubectl cp` for an hour (ready once they exist).
    static func collector(_ scenario: Scenario, namespace: String, image: String, validatorCores: Double) -> Node {
        let shared: [(String, String)] = [("run.json", "run.json"), ("genesis.json", "genesis.json"),
                                          ("topology.toml", "topology.toml")]
        return object("batch/v1", "Job", name: "faultline-collector", namespace: namespace,
                      labels: [(appLabel, "faultline"), (setLabel, "collector")], [
            ("spec", map([
                ("backoffLimit", 0),
                ("activeDeadlineSeconds", int(Int(scenario.scheduleSecondsMax) + 3_600 + 600)),
                ("template", map([
                    ("metadata", map([("labels", map([(appLabel, "faultline"), (setLabel, "collector")]))])),
                    ("spec", map([
                        ("restartPolicy", "Never"),
                        ("containers", Node([map([
                            ("name", "collector"),
                            ("image", Node(image)),
                            ("args", Node(["faultline", "collect", Node("\(runDir)/topology.toml"), "--from", Node(runDir),
                                           "--out", "/reports", "--keep-s", "3600",
                                           "--validator-cores", Node(String(validatorCores))])),
                            ("readinessProbe", map([
                                ("exec", map([("command", Node([Node("test"), Node("-f"), Node("/reports/report.json")]))])),
                                ("periodSeconds", 5),
                            ])),
                            ("resources", map([
                                ("requests", map([("cpu", "500m"), ("memory", "256Mi")])),
                                ("limits", map([("cpu", "2"), ("memory", "1Gi")])),
                            ])),
                            ("volumeMounts", Node([
                                map([("name", "run"), ("mountPath", Node(runDir)), ("readOnly", bool(true))]),
                                map([("name", "reports"), ("mountPath", "/reports")]),
                            ])),
                        ])])),
                        ("volumes", Node([
                            runVolume(configItems: shared, secretItems: [("token", "token")]),
                            map([("name", "reports"), ("emptyDir", map([]))]),
                        ])),
                    ])),
                ])),
            ])),
        ])
    }

    static let containerfile = """
        # The image every exported object runs: faultline-node (the nodes) and faultline (schedule steps,
        # the collector). Build it from the repository's root and push it where the cluster pulls from:
        #   docker build -f Containerfile -t IMAGE /path/to/faultline && docker push IMAGE
        FROM swift:6.1-bookworm AS build
        RUN apt-get update && apt-get install -y --no-install-recommends libsodium-dev pkg-config \\
            && rm -rf /var/lib/apt/lists/*
        WORKDIR /src
        COPY Package.swift ./
        COPY Sources ./Sources
        RUN swift build -c release --product faultline && swift build -c release --product faultline-node

        FROM swift:6.1-bookworm-slim
        RUN apt-get update && apt-get install -y --no-install-recommends libsodium23 tini \\
            && rm -rf /var/lib/apt/lists/*
        COPY --from=build /src/.build/release/faultline /src/.build/release/faultline-node /usr/local/bin/
        # tini is PID 1: the node runs as its child, so a pause (SIGSTOP) and a kill reach it as on a host.
        ENTRYPOINT ["/usr/bin/tini", "--"]
        CMD ["faultline", "--help"]

        """

    // MARK: building nodes

    static func object(_ apiVersion: String, _ kind: String, name: String, namespace: String?,
                       labels: [(String, Node)], _ rest: [(String, Node)]) -> Node {
        var metadata: [(String, Node)] = [("name", Node(name))]
        if let namespace { metadata.append(("namespace", Node(namespace))) }
        metadata.append(("labels", map(labels)))
        return map([("apiVersion", Node(apiVersion)), ("kind", Node(kind)), ("metadata", map(metadata))] + rest)
    }

    static func map(_ pairs: [(String, Node)]) -> Node { Node(pairs.map { (Node($0.0), $0.1) }) }
    static func int(_ value: Int) -> Node { Node(String(value), Tag(.int)) }
    static func bool(_ value: Bool) -> Node { Node(value ? "true" : "false", Tag(.bool)) }
    /// Every plain string that YAML would read back as a number, a bool or null, double-quoted ("3600"
    /// in a container's args must stay a string); scalars made by `int` and `bool` keep their tags.
    static func quoted(_ node: Node) -> Node {
        switch node {
        case .scalar(let scalar):
            guard scalar.tag != Tag(.int), scalar.tag != Tag(.bool), scalar.style != .literal else { return node }
            let text = scalar.string
            let typed = Double(text) != nil || Int(text) != nil || text.hasPrefix("0x") || text.hasPrefix("0o")
                || ["true", "false", "yes", "no", "on", "off", "y", "n", "null", "~", ""].contains(text.lowercased())
            return typed ? Node(text, Tag(.str), .doubleQuoted) : node
        case .mapping(let mapping):
            return Node(mapping.map { (quoted($0.key), quoted($0.value)) })
        case .sequence(let sequence):
            return Node(sequence.map(quoted))
        case .alias:
            return node
        }
    }

    /// A multi-line file as a literal block.
    static func literal(_ text: String) -> Node { Node(text, Tag(.str), .literal) }
}
