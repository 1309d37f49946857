import Formats
import Foundation
import RPC
import RPCClient
import Sodium
import Wire

/// Runs `[rpc_load]`: the same steady request stream through each client policy at once (open
/// loop: a request leaves on schedule whether or not earlier ones were answered), and records every
/// request in `load/rpc-clients.jsonl`: send time, client, method, outcome, latency, upstream
/// attempts, and the head an `eth_blockNumber` answer named.
public enum RPCLoad {
    /// Requests in flight per client beyond which a new one is counted as failed at once (a bound on
    /// tasks when every upstream hangs).
    public static let inFlightMax = 4_000

    struct Client {
        var name: String
        var client: FailoverClient
    }

    /// The client policies of `spec` over the run's rpc nodes and gateway (`RPCLoadSpec.policy`).
    static func clients(_ spec: RPCLoadSpec, topology: Topology, manifest: RunManifest, seed: UInt64) throws -> [Client] {
        let upstreams = RunFolder.endpoints(topology, entries: manifest.nodes)
        guard let primary = upstreams.min(by: { $0.tier < $1.tier }) else { throw RunError("[rpc_load] needs rpc nodes") }
        return try spec.clients.enumerated().map { index, name in
            let (which, settings) = spec.policy(name, gateway: topology.gateway)
            let endpoints: [Endpoint]
            switch which {
            case .primary: endpoints = [primary]
            case .byTier: endpoints = upstreams.sorted { $0.tier < $1.tier }
            case .all: endpoints = upstreams
            case .gateway:
                guard let gateway = manifest.nodes.first(where: { $0.role == "gateway" }), let port = gateway.rpcPort else {
                    throw RunError("the gateway client needs a gateway node")
                }
                endpoints = [Endpoint(name: gateway.name, host: gateway.host, port: port, tier: 0)]
            case .external:
                endpoints = [Endpoint(name: "external", host: spec.endpointHost, port: spec.endpointPort, tier: 0)]
            }
            return Client(name: name, client: FailoverClient(endpoints: endpoints, settings: settings, seed: seed &+ UInt64(index)))
        }
    }

    /// Sends for `seconds` (or until cancelled); returns the requests sent per client.
    public static func run(_ spec: RPCLoadSpec, topology: Topology, manifest: RunManifest, runDir: String,
                           seconds: Double) async throws -> [String: Int] {
        let clients = try clients(spec, topology: topology, manifest: manifest, seed: manifest.seed)
        try FileManager.default.createDirectory(atPath: runDir + "/load", withIntermediateDirectories: true)
        let log = try RecordLog(path: runDir + "/load/rpc-clients.jsonl")
        try RunFolder.writeJSON(runDir + "/load/rpc-load.json",
                                RPCLoadRecord(clients: spec.clients, ratePerSecond: spec.ratePerSecond,
                                              staleBlocks: spec.staleBlocks, methods: spec.methods),
                                mode: 0o644)
        for client in clients { await client.client.start() }
        let addresses = (0..<max(manifest.accounts, 1)).map {
            Address(ClusterSetup.accountKey(chainId: manifest.chainId, seed: manifest.seed, index: $0).publicKey).description
        }
        let sent = await withTaskGroup(of: (String, Int).self) { group in
            for client in clients {
                group.addTask {
                    (client.name, await drive(client, spec: spec, seconds: seconds, addresses: addresses, log: log))
                }
            }
            var out: [String: Int] = [:]
            for await (name, count) in group { out[name] = count }
            return out
        }
        for client in clients { await client.client.shutdown() }
        log.close()
        return sent
    }

    /// One client's open-loop stream: request i leaves at start + i / rate.
    static func drive(_ client: Client, spec: RPCLoadSpec, seconds: Double, addresses: [String],
                      log: RecordLog) async -> Int {
        let started = Date()
        let total = Int(Double(spec.ratePerSecond) * seconds)
        let inFlight = Counter()
        let lastHead = Counter() // the highest head an answer named (see `RPCLoadSpec.request`)
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<total {
                let due = started.addingTimeInterval(Double(index) / Double(spec.ratePerSecond))
                let wait = due.timeIntervalSinceNow
                if wait > 0 { try? await Task.sleep(for: .milliseconds(Int64(wait * 1000))) }
                if Task.isCancelled { break }
                let request = spec.request(index, addresses: addresses, head: UInt64(max(lastHead.add(0), 0)))
                let sentMs = nowMs()
                guard inFlight.add(1) <= inFlightMax else {
                    inFlight.add(-1)
                    log.write(Record(t: sentMs, client: client.name, method: request.method, ok: false,
                                     error: "client: \(inFlightMax) requests in flight", ms: 0, attempts: 0, head: nil))
                    continue
                }
                group.addTask {
                    let reply = await client.client.call(request)
                    inFlight.add(-1)
                    let done = nowMs()
                    let record = Record(t: sentMs, client: client.name, method: request.method, response: reply.response,
                                        ms: done - min(done, sentMs), attempts: reply.attempts)
                    if let head = record.head { lastHead.raise(to: Int(clamping: head)) }
                    log.write(record)
                }
            }
            if Task.isCancelled { group.cancelAll() }
        }
        return total
    }

    static func nowMs() -> UInt64 { UInt64(Date().timeIntervalSince1970 * 1000) }

    public typealias Record = RPCRequestRecord

    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var value = 0
        @discardableResult
        func add(_ delta: Int) -> Int { lock.withLock { value += delta; return value } }
        func raise(to candidate: Int) { lock.withLock { value = max(value, candidate) } }
    }

    /// Appends records as JSON lines (buffered; one writer lock).
    final class RecordLog: @unchecked Sendable {
        private let lock = NSLock()
        private let file: UnsafeMutablePointer<FILE>
        private let encoder = JSONEncoder()

        init(path: String) throws {
            guard let file = fopen(path, "a") else { throw RunError("cannot write \(path)") }
            self.file = file
            encoder.outputFormatting = [.sortedKeys]
        }

        func write(_ record: Record) {
            lock.withLock {
                guard let data = try? encoder.encode(record) else { return }
                _ = data.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
                fputc(10, file)
            }
        }

        func close() { lock.withLock { fflush(file); fclose(file) } }
    }
}
