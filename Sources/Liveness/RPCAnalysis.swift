import Formats
import Foundation
import Wire

/// The JSON-RPC side of a run (Topologies/README.md, "RPC nodes and failover"): every client request from
/// `load/rpc-clients.jsonl`, the gateway's counters and upstream events from its event log, and the chain's true head
/// over time, to judge answers stale.
public struct RPCAnalysis: Sendable {
    public typealias Request = RPCRequestRecord

    /// A gateway's cumulative counters at one time.
    public struct GatewaySample: Sendable, Equatable {
        public var timeMs: UInt64
        public var requests: UInt64
        public var attempts: UInt64
        public var hedges: UInt64
        public var retries: UInt64

        public init(timeMs: UInt64, requests: UInt64, attempts: UInt64, hedges: UInt64, retries: UInt64) {
            self.timeMs = timeMs
            self.requests = requests
            self.attempts = attempts
            self.hedges = hedges
            self.retries = retries
        }
    }

    public struct UpstreamEvent: Sendable, Equatable {
        public var timeMs: UInt64
        public var gateway: String
        public var kind: String
        public var upstream: String
    }

    /// What one client saw over some intervals of the run.
    public struct ClientSummary: Codable, Sendable, Equatable {
        public var client: String
        public var requests: Int
        public var errors: Int
        public var errorPercent: Double
        public var latencyP50Ms: UInt64?
        public var latencyP99Ms: UInt64?
        /// `eth_blockNumber` answers more than `staleBlocks` behind the chain's head when sent.
        public var staleAnswers: Int
        /// `eth_blockNumber` answers lower than one this client already had.
        public var headDecreases: Int
        /// Blocks answered with a hash the chain never committed at that height.
        public var wrongAnswers: Int
        /// Upstream requests per client request (for the gateway client: the gateway's own).
        public var amplification: Double?
        public var topErrors: [String]
    }

    public var requests: [Request]
    public var clients: [String]
    public var staleBlocks: UInt64
    /// By gateway node.
    public var gatewaySamples: [String: [GatewaySample]]
    public var upstreamEvents: [UpstreamEvent]
    /// The chain's head over time: (first time any node had the height, height), ascending.
    public var heads: [(timeMs: UInt64, height: UInt64)]
    /// The committed block hash at each height (hex).
    public var blockHashes: [UInt64: String]

    public init(requests: [Request], clients: [String], staleBlocks: UInt64, gatewaySamples: [String: [GatewaySample]],
                upstreamEvents: [UpstreamEvent], heads: [(timeMs: UInt64, height: UInt64)],
                blockHashes: [UInt64: String] = [:]) {
        self.blockHashes = blockHashes
        self.requests = requests.sorted { $0.t < $1.t }
        self.clients = clients
        self.staleBlocks = staleBlocks
        self.gatewaySamples = gatewaySamples
        self.upstreamEvents = upstreamEvents
        self.heads = heads
    }

    /// Reads the run's RPC records; nil when the run had no RPC load.
    static func load(loadDir: String, nodeDirs: [(String, String)], heads: [(timeMs: UInt64, height: UInt64)],
                     blockHashes: [UInt64: String]) -> RPCAnalysis? {
        guard let data = FileManager.default.contents(atPath: loadDir + "/rpc-clients.jsonl") else { return nil }
        struct Settings: Decodable {
            var clients: [String]
            var staleBlocks: UInt64
        }
        let settings = FileManager.default.contents(atPath: loadDir + "/rpc-load.json")
            .flatMap { try? JSONDecoder().decode(Settings.self, from: $0) }
        let decoder = JSONDecoder()
        let requests = data.split(separator: UInt8(ascii: "\n")).compactMap { try? decoder.decode(Request.self, from: Data($0)) }
        var samples: [String: [GatewaySample]] = [:]
        var events: [UpstreamEvent] = []
        for (name, dir) in nodeDirs {
            guard let text = FileManager.default.contents(atPath: dir + "/events.jsonl") else { continue }
            for line in text.split(separator: UInt8(ascii: "\n")) where line.count < 4_096 {
                guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
                      let event = object["event"] as? String, let t = (object["t"] as? NSNumber)?.uint64Value else { continue }
                func count(_ key: String) -> UInt64 { (object[key] as? NSNumber)?.uint64Value ?? 0 }
                if event == "gateway_stats" {
                    samples[name, default: []].append(GatewaySample(timeMs: t, requests: count("requests"),
                        attempts: count("attempts"), hedges: count("hedges"), retries: count("retries")))
                } else if event == "gateway_upstream" {
                    events.append(UpstreamEvent(timeMs: t, gateway: name, kind: object["kind"] as? String ?? "",
                                                upstream: object["upstream"] as? String ?? ""))
                }
            }
        }
        let clients = settings?.clients ?? Array(Set(requests.map(\.client))).sorted()
        return RPCAnalysis(requests: requests, clients: clients, staleBlocks: settings?.staleBlocks ?? 16,
                           gatewaySamples: samples, upstreamEvents: events.sorted { $0.timeMs < $1.timeMs }, heads: heads,
                           blockHashes: blockHashes)
    }

    /// The chain's head at `timeMs` (0 before the first block).
    public func head(at timeMs: UInt64) -> UInt64 {
        var low = 0, high = heads.count
        while low < high {
            let mid = (low + high) / 2
            if heads[mid].timeMs <= timeMs { low = mid + 1 } else { high = mid }
        }
        return low == 0 ? 0 : heads[low - 1].height
    }

    func sent(_ client: String, in ranges: [ClosedRange<UInt64>]) -> [Request] {
        requests.filter { request in request.client == client && ranges.contains { $0.contains(request.t) } }
    }

    public func isStale(_ request: Request) -> Bool {
        guard let answered = request.head else { return false }
        return answered + staleBlocks < head(at: request.t)
    }

    /// A block answered under a hash other than the one committed at its height.
    public func isWrong(_ request: Request) -> Bool {
        guard let block = request.block, let hash = request.hash, let committed = blockHashes[block] else { return false }
        return committed != hash
    }

    public func summary(_ client: String, in ranges: [ClosedRange<UInt64>]) -> ClientSummary {
        let list = sent(client, in: ranges)
        let errors = list.filter { !$0.ok }
        let latencies = list.filter(\.ok).map(\.ms).sorted()
        let decreased = RPCAnalysis.headDecreases(requests.filter { $0.client == client })
        var errorKinds: [String: Int] = [:]
        for error in errors { errorKinds[String((error.error ?? "").prefix(60)), default: 0] += 1 }
        return ClientSummary(
            client: client, requests: list.count, errors: errors.count,
            errorPercent: list.isEmpty ? 0 : Double(errors.count) * 100 / Double(list.count),
            latencyP50Ms: Evaluator.percentile(latencies, 0.5), latencyP99Ms: Evaluator.percentile(latencies, 0.99),
            staleAnswers: list.filter(isStale).count,
            headDecreases: list.filter { $0.head != nil && decreased.contains($0.t) }.count,
            wrongAnswers: list.filter(isWrong).count,
            amplification: amplification(client, list: list, in: ranges),
            topErrors: errorKinds.sorted { $0.value > $1.value }.prefix(3).map { "\($0.value)× \($0.key)" })
    }

    /// Send times of the `eth_blockNumber` requests answered with a head lower than one the client had
    /// already received when it sent them (monotonic reads, judged over the whole run). Requests in
    /// flight together are not ordered: the answer produced first may arrive second, which no server
    /// can prevent, so only an answer that arrived before a request was sent constrains it.
    static func headDecreases(_ requests: [Request]) -> Set<UInt64> {
        let answered = requests.filter { $0.head != nil }
        let byArrival = answered.sorted { $0.t + $0.ms < $1.t + $1.ms }
        var decreased = Set<UInt64>()
        var highest: UInt64 = 0
        var next = 0
        for request in answered.sorted(by: { $0.t < $1.t }) {
            while next < byArrival.count, byArrival[next].t + byArrival[next].ms < request.t {
                highest = max(highest, byArrival[next].head!)
                next += 1
            }
            if request.head! < highest { decreased.insert(request.t) }
        }
        return decreased
    }

    func amplification(_ client: String, list: [Request], in ranges: [ClosedRange<UInt64>]) -> Double? {
        if client == "gateway", let samples = gatewaySamples.values.first, !samples.isEmpty {
            var requests: UInt64 = 0, attempts: UInt64 = 0
            for range in ranges {
                let before = samples.last { $0.timeMs <= range.lowerBound }
                guard let after = samples.last(where: { $0.timeMs <= range.upperBound }) ?? samples.last else { continue }
                requests += after.requests - min(after.requests, before?.requests ?? 0)
                attempts += after.attempts - min(after.attempts, before?.attempts ?? 0)
            }
            return requests == 0 ? nil : Double(attempts) / Double(requests)
        }
        guard !list.isEmpty else { return nil }
        return Double(list.reduce(0) { $0 + $1.attempts }) / Double(list.count)
    }

    /// From a fault's start: to the first success of a request sent after it, and to the first moment
    /// from which 99% of the requests sent in the next second succeeded (0 when they always did).
    public func failover(_ client: String, faultStartMs: UInt64, endMs: UInt64) -> (firstSuccessMs: UInt64?, ms99: UInt64?) {
        let after = requests.filter { $0.client == client && $0.t >= faultStartMs && $0.t <= endMs }
        let firstSuccess = after.filter(\.ok).map { $0.t + $0.ms }.min().map { $0 - faultStartMs }
        var windowEnd = 0
        var failedInWindow = 0
        for (index, request) in after.enumerated() {
            while windowEnd < after.count, after[windowEnd].t < request.t + 1_000 {
                if !after[windowEnd].ok { failedInWindow += 1 }
                windowEnd += 1
            }
            let count = windowEnd - index
            // A window needs a full second of requests after it, or the run's end.
            let complete = request.t + 1_000 <= endMs
            if complete, count > 0, Double(count - failedInWindow) >= 0.99 * Double(count) {
                return (firstSuccess, index == 0 ? 0 : request.t - faultStartMs)
            }
            if !request.ok { failedInWindow -= 1 }
        }
        return (firstSuccess, nil)
    }

    /// Success share per `binMs` bin of send time, per client: rows of [seconds since start, % per client].
    public func successSeries(startMs: UInt64, endMs: UInt64, binMs: UInt64 = 500) -> [[Double]] {
        guard endMs > startMs else { return [] }
        let bins = Int((endMs - startMs) / binMs) + 1
        var okCounts = Array(repeating: Array(repeating: 0, count: clients.count), count: bins)
        var allCounts = okCounts
        let index = Dictionary(uniqueKeysWithValues: clients.enumerated().map { ($1, $0) })
        for request in requests where request.t >= startMs && request.t <= endMs {
            guard let column = index[request.client] else { continue }
            let bin = Int((request.t - startMs) / binMs)
            allCounts[bin][column] += 1
            if request.ok { okCounts[bin][column] += 1 }
        }
        return (0..<bins).compactMap { bin in
            guard allCounts[bin].contains(where: { $0 > 0 }) else { return nil }
            let second = Double(UInt64(bin) * binMs + binMs / 2) / 1000
            return [second] + clients.indices.map { column in
                allCounts[bin][column] == 0 ? -1 : Double(okCounts[bin][column]) * 100 / Double(allCounts[bin][column])
            }
        }
    }
}
