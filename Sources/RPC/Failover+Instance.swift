import Basics
import Wire

extension Failover {
    /// One upstream as the policy sees it.
    public struct UpstreamState: Sendable {
        public enum Breaker: Sendable, Equatable {
            case closed
            case open(untilMs: UInt64)
            /// One probe request is allowed; its outcome closes or re-opens the breaker.
            case halfOpen(probing: Bool)
        }

        public let upstream: Upstream
        public internal(set) var breaker: Breaker = .closed
        public internal(set) var head: UInt64?
        /// When `head` last moved up.
        public internal(set) var headAdvancedMs: UInt64 = 0
        public internal(set) var excluded = false
        var outcomes: [Bool] = []
        var outcomeNext = 0
        var consecutiveFailures = 0
        var latencies: [UInt64] = []
        var latencyNext = 0
        var pollInFlight = false
        var lastPollMs: UInt64?
        var lastPickedSeq = 0

        static let latenciesMax = 128

        public var failuresInWindow: Int { outcomes.filter { !$0 }.count }

        mutating func record(_ ok: Bool, window: Int) {
            if outcomes.count < window {
                outcomes.append(ok)
            } else if window > 0 {
                outcomes[outcomeNext % window] = ok
            }
            outcomeNext += 1
            consecutiveFailures = ok ? 0 : consecutiveFailures + 1
        }

        mutating func recordLatency(_ ms: UInt64) {
            if latencies.count < UpstreamState.latenciesMax {
                latencies.append(ms)
            } else {
                latencies[latencyNext % UpstreamState.latenciesMax] = ms
            }
            latencyNext += 1
        }

        func latencyQuantile(_ q: Double) -> UInt64? {
            guard latencies.count >= 20 else { return nil }
            let sorted = latencies.sorted()
            return sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))]
        }
    }

    struct Open: Sendable {
        var method: String
        var idempotent: Bool
        var startedMs: UInt64
        /// Upstream and send time of each attempt, by attempt number; nil once it ended.
        var inFlight: [Int: (upstream: Int, sentMs: UInt64)] = [:]
        var attempts = 0
        var tried: [Int] = []
        var retryPending = false
        var lastFailure = ""
        /// Quorum reads: attempts by result digest, and the upstream of each answered attempt.
        var agreeing: [UInt64: [Int]] = [:]
        var answeredBy: [Int: Int] = [:]
        var quorum = 0
        var probe: Int?
    }

    public struct Instance: Sendable {
        public let settings: Settings
        public internal(set) var upstreams: [UpstreamState]
        public internal(set) var counters = Counters()
        /// The highest head an `eth_blockNumber` answer carried: no later answer goes below it.
        public internal(set) var servedHead: UInt64 = 0
        var open: [UInt64: Open] = [:]
        var rng: SplitMix64
        var budget: Double
        var pickSeq = 0

        public init(settings: Settings, upstreams: [Upstream], seed: UInt64) {
            precondition(!upstreams.isEmpty, "a failover policy needs at least one upstream")
            self.settings = settings
            self.upstreams = upstreams.map { UpstreamState(upstream: $0) }
            self.rng = SplitMix64(seed: seed)
            self.budget = settings.retryBudgetBurst
        }

        public var openRequests: Int { open.count }

        /// The best head any upstream reported, and when it last moved.
        public var bestHead: (head: UInt64, advancedMs: UInt64)? {
            upstreams.compactMap { state in state.head.map { ($0, state.headAdvancedMs) } }.max { $0.0 < $1.0 }
        }

        // MARK: inputs

        /// A client request arrives.
        public mutating func begin(_ id: UInt64, method: String, nowMs: UInt64) -> [Effect] {
            var effects: [Effect] = []
            counters.requests += 1
            guard open.count < settings.openRequestsMax else {
                counters.refusedOverload += 1
                counters.errors += 1
                effects.append(.respond(request: id, .failure(JSONRPC.Failure(.limitExceeded,
                    "\(settings.openRequestsMax) requests in flight; try again"))))
                return effects
            }
            precondition(open[id] == nil, "request id \(id) is already open")
            budget = min(settings.retryBudgetBurst, budget + settings.retryBudgetRatio)
            var request = Open(method: method, idempotent: Methods.idempotent.contains(method), startedMs: nowMs)
            if settings.quorum > 1, request.idempotent, method != "eth_blockNumber" {
                request.quorum = min(settings.quorum, upstreams.count)
            }
            open[id] = request
            effects.append(.schedule(request: id, .deadline, atMs: nowMs + settings.requestDeadlineMs))
            for _ in 0..<max(request.quorum, 1) { effects += sendAttempt(id, nowMs: nowMs) }
            if request.quorum == 0, request.idempotent, settings.hedgeQuantile > 0, let first = open[id]?.tried.first {
                let delay = max(settings.hedgeAfterMsMin, upstreams[first].latencyQuantile(settings.hedgeQuantile)
                    ?? settings.attemptTimeoutMs / 4)
                effects.append(.schedule(request: id, .hedge, atMs: nowMs + delay))
            }
            return effects
        }

        /// An attempt ended.
        public mutating func onOutcome(_ id: UInt64, attempt: Int, _ outcome: Outcome, nowMs: UInt64) -> [Effect] {
            var effects: [Effect] = []
            guard var request = open[id], let sent = request.inFlight.removeValue(forKey: attempt) else {
                return effects // a late answer to a request already answered
            }
            let upstream = sent.upstream
            open[id] = request
            switch outcome {
            case .answered(let blockNumber, let digest):
                upstreams[upstream].recordLatency(nowMs >= sent.sentMs ? nowMs - sent.sentMs : 0)
                effects += recordHealth(upstream, ok: true, nowMs: nowMs)
                if let blockNumber { effects += noteHead(upstream, blockNumber, nowMs: nowMs) }
                if let blockNumber, let best = bestHead?.head, Failover.plus(blockNumber, settings.lagBlocksMax) < best {
                    counters.staleRefused += 1
                    effects += failed(id, "\(upstreams[upstream].upstream.name) answered head \(blockNumber), "
                                      + "best known \(best)", safeToRetry: true, nowMs: nowMs)
                    return effects
                }
                if request.quorum > 1 {
                    request.agreeing[digest, default: []].append(attempt)
                    request.answeredBy[attempt] = upstream
                    open[id] = request
                    if request.agreeing[digest]!.count >= request.quorum {
                        // An upstream outvoted by the quorum answered wrong: that counts against it, so a
                        // liar's breaker opens and reads stop paying for its answers.
                        for (other, attempts) in request.agreeing where other != digest {
                            for lost in attempts {
                                if let liar = request.answeredBy[lost] {
                                    effects += recordHealth(liar, ok: false, nowMs: nowMs)
                                }
                            }
                        }
                        effects += respond(id, .attempt(attempt))
                    } else if request.inFlight.isEmpty {
                        effects += sendAttempt(id, nowMs: nowMs, orFail: "no \(request.quorum) upstreams agreed")
                    }
                    return effects
                }
                // A hedge answered first: the attempts still out lost a race they started ahead in.
                // That counts against their upstreams (outlier detection): a black-holed upstream
                // opens its breaker after a few requests instead of after a few attempt timeouts.
                for (_, slow) in request.inFlight { effects += recordHealth(slow.upstream, ok: false, nowMs: nowMs) }
                if let blockNumber {
                    if blockNumber < servedHead {
                        counters.headClamped += 1
                        effects += respond(id, .head(servedHead))
                        return effects
                    }
                    servedHead = blockNumber
                }
                effects += respond(id, .attempt(attempt))
            case .connectFailed:
                effects += recordHealth(upstream, ok: false, nowMs: nowMs)
                effects += failed(id, "\(upstreams[upstream].upstream.name): no connection (refused, or none free in time)",
                                  safeToRetry: true, delivered: false, nowMs: nowMs)
            case .timedOut:
                effects += recordHealth(upstream, ok: false, nowMs: nowMs)
                effects += failed(id, "\(upstreams[upstream].upstream.name): timed out", safeToRetry: false, nowMs: nowMs)
            case .failed(let why):
                effects += recordHealth(upstream, ok: false, nowMs: nowMs)
                effects += failed(id, "\(upstreams[upstream].upstream.name): \(why)", safeToRetry: false, nowMs: nowMs)
            }
            return effects
        }

        public mutating func onTimer(_ id: UInt64, _ timer: Timer, nowMs: UInt64) -> [Effect] {
            var effects: [Effect] = []
            guard var request = open[id] else { return effects }
            switch timer {
            case .deadline:
                let why = request.lastFailure.isEmpty ? "no upstream answered" : request.lastFailure
                effects += respond(id, .failure(JSONRPC.Failure(.resourceUnavailable,
                    "deadline of \(settings.requestDeadlineMs) ms passed: \(why)")))
            case .retry:
                request.retryPending = false
                open[id] = request
                effects += sendAttempt(id, nowMs: nowMs, orFail: request.lastFailure)
            case .hedge:
                guard request.inFlight.count == 1, !request.retryPending, request.attempts < settings.attemptsMax,
                      takeBudget() else { return effects }
                counters.hedges += 1
                effects += sendAttempt(id, nowMs: nowMs)
            }
            return effects
        }

        /// A head poll's answer (nil: the poll failed).
        public mutating func onHead(_ upstream: Int, _ head: UInt64?, nowMs: UInt64) -> [Effect] {
            var effects: [Effect] = []
            upstreams[upstream].pollInFlight = false
            guard let head else {
                effects += recordHealth(upstream, ok: false, nowMs: nowMs)
                return effects
            }
            effects += noteHead(upstream, head, nowMs: nowMs)
            if case .halfOpen = upstreams[upstream].breaker {} else if case .open = upstreams[upstream].breaker {} else {
                effects += recordHealth(upstream, ok: true, nowMs: nowMs)
            }
            return effects
        }

        /// Polls due, breakers due for a probe, and exclusions re-judged (call every few tens of ms).
        public mutating func tick(nowMs: UInt64) -> [Effect] {
            var effects: [Effect] = []
            for index in upstreams.indices {
                if case .open(let until) = upstreams[index].breaker, nowMs >= until {
                    upstreams[index].breaker = .halfOpen(probing: false)
                    effects.append(.event("breaker_half_open", upstream: index))
                }
                guard settings.headPollMs > 0, !upstreams[index].pollInFlight,
                      upstreams[index].lastPollMs.map({ nowMs >= $0 + settings.headPollMs }) ?? true else { continue }
                upstreams[index].pollInFlight = true
                upstreams[index].lastPollMs = nowMs
                counters.polls += 1
                effects.append(.poll(upstream: index))
            }
            effects += judgeLag(nowMs: nowMs)
            return effects
        }

        /// The attempt a poll was lost on (the shell gave up on it): polls may start again.
        public mutating func pollLost(_ upstream: Int) { upstreams[upstream].pollInFlight = false }
    }
}
