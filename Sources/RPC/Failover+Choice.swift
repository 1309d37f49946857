import Wire

extension Failover.Instance {
    public typealias Effect = Failover.Effect

    /// Sends the request's next attempt to the best upstream not yet tried, or answers with a failure
    /// when there is none (`orFail` says why).
    mutating func sendAttempt(_ id: UInt64, nowMs: UInt64, orFail why: String = "") -> [Effect] {
        var effects: [Effect] = []
        guard var request = open[id] else { return effects }
        guard request.attempts < settings.attemptsMax, let (upstream, probe) = pick(excluding: request.tried) else {
            if request.inFlight.isEmpty, !request.retryPending {
                let reason = why.isEmpty ? "no upstream left to try" : why
                effects += respond(id, .failure(JSONRPC.Failure(.resourceUnavailable,
                    "\(request.attempts) attempt(s) failed: \(reason)")))
            }
            return effects
        }
        if request.attempts > 0 { counters.retries += request.inFlight.isEmpty ? 1 : 0 }
        let attempt = request.attempts
        request.attempts += 1
        request.tried.append(upstream)
        request.inFlight[attempt] = (upstream, nowMs)
        if probe {
            upstreams[upstream].breaker = .halfOpen(probing: true)
            request.probe = upstream
        }
        open[id] = request
        counters.attempts += 1
        effects.append(.send(request: id, attempt: attempt, upstream: upstream))
        return effects
    }

    /// Which upstream next: healthy ones (breaker closed, or half-open with its probe slot free, and
    /// not excluded for lag) by tier, in turn within a tier; when none is healthy, fail open to the
    /// rest (best head first). Upstreams already tried for this request come last.
    mutating func pick(excluding tried: [Int]) -> (Int, probe: Bool)? {
        func healthy(_ state: Failover.UpstreamState) -> (ok: Bool, probe: Bool) {
            switch state.breaker {
            case .closed: return (!state.excluded, false)
            case .open: return (false, false)
            case .halfOpen(let probing): return (!probing && !state.excluded, true)
            }
        }
        let untried = upstreams.indices.filter { !tried.contains($0) }
        let healthyUntried = untried.filter { healthy(upstreams[$0]).ok }
        var choice: Int?
        if !healthyUntried.isEmpty {
            let tier = healthyUntried.map { upstreams[$0].upstream.tier }.min()!
            let sameTier = healthyUntried.filter { upstreams[$0].upstream.tier == tier }
            choice = settings.naiveOrder ? sameTier.first : sameTier.min { upstreams[$0].lastPickedSeq < upstreams[$1].lastPickedSeq }
        } else if settings.failOpen {
            let pool = untried.isEmpty ? Array(upstreams.indices) : untried
            choice = pool.max { (upstreams[$0].head ?? 0, -$0) < (upstreams[$1].head ?? 0, -$1) }
            if choice != nil, !untried.isEmpty { counters.failedOpen += 1 }
        }
        guard let choice else { return nil }
        pickSeq += 1
        upstreams[choice].lastPickedSeq = pickSeq
        return (choice, healthy(upstreams[choice]).probe && healthy(upstreams[choice]).ok)
    }

    /// An attempt failed: retry after a backoff if the method allows it and the budget has a token;
    /// wait for a hedge still in flight; otherwise answer with the failure.
    ///
    /// An attempt that never reached its upstream (`delivered: false`: the connection was refused, or no
    /// pooled connection came free in time) is tried elsewhere without a budget token: it put no load on
    /// anyone, so moving on is failover, not a retry storm (still bounded by `attemptsMax`, the deadline
    /// and the upstreams not yet tried). At the start of an outage of two upstreams, the requests in
    /// flight to them all failed at once, spent the budget's burst, and the rest were answered with
    /// errors while a third upstream was healthy.
    mutating func failed(_ id: UInt64, _ why: String, safeToRetry: Bool, delivered: Bool = true,
                         nowMs: UInt64) -> [Effect] {
        var effects: [Effect] = []
        guard var request = open[id] else { return effects }
        counters.failedAttempts += 1
        request.lastFailure = why
        open[id] = request
        guard request.inFlight.isEmpty else { return effects }
        let mayRetry = request.idempotent || safeToRetry || settings.naiveOrder
        guard mayRetry, request.attempts < settings.attemptsMax, nowMs < request.startedMs + settings.requestDeadlineMs,
              !delivered || takeBudget() else {
            effects += respond(id, .failure(JSONRPC.Failure(.resourceUnavailable,
                "\(request.attempts) attempt(s) failed, last: \(why)")))
            return effects
        }
        let ceiling = min(settings.backoffMaxMs, settings.backoffBaseMs << UInt64(min(request.attempts, 20)))
        let wait = ceiling == 0 ? 0 : rng.next() % (ceiling + 1)
        if wait == 0 {
            effects += sendAttempt(id, nowMs: nowMs, orFail: why)
        } else {
            request.retryPending = true
            open[id] = request
            effects.append(.schedule(request: id, .retry, atMs: nowMs + wait))
        }
        return effects
    }

    mutating func takeBudget() -> Bool {
        guard budget >= 1 else { return false }
        budget -= 1
        return true
    }

    mutating func respond(_ id: UInt64, _ response: Failover.Response) -> [Effect] {
        guard let request = open.removeValue(forKey: id) else { return [] }
        if let probe = request.probe, case .halfOpen(true) = upstreams[probe].breaker {
            upstreams[probe].breaker = .halfOpen(probing: false) // the probe never came back: another may go
        }
        if case .failure = response { counters.errors += 1 } else { counters.answered += 1 }
        return [.respond(request: id, response)]
    }

    /// Feeds the breaker. A half-open upstream closes on a success and re-opens on a failure.
    mutating func recordHealth(_ index: Int, ok: Bool, nowMs: UInt64) -> [Effect] {
        var effects: [Effect] = []
        switch upstreams[index].breaker {
        case .halfOpen:
            if ok {
                upstreams[index].breaker = .closed
                upstreams[index].outcomes = []
                upstreams[index].outcomeNext = 0
                upstreams[index].consecutiveFailures = 0
                effects.append(.event("breaker_closed", upstream: index))
            } else {
                upstreams[index].breaker = .open(untilMs: nowMs + settings.breakerOpenMs)
                effects.append(.event("breaker_open", upstream: index))
            }
        case .open:
            break
        case .closed:
            upstreams[index].record(ok, window: settings.breakerWindow)
            let state = upstreams[index]
            if !ok, state.failuresInWindow >= settings.breakerFailures
                || state.consecutiveFailures >= settings.breakerConsecutive {
                upstreams[index].breaker = .open(untilMs: nowMs + settings.breakerOpenMs)
                effects.append(.event("breaker_open", upstream: index))
            }
        }
        return effects
    }

    mutating func noteHead(_ index: Int, _ head: UInt64, nowMs: UInt64) -> [Effect] {
        if head > (upstreams[index].head ?? 0) || upstreams[index].head == nil {
            upstreams[index].head = head
            upstreams[index].headAdvancedMs = nowMs
        }
        return judgeLag(nowMs: nowMs)
    }

    /// Excludes upstreams too far behind the best head, or stuck while it moves; lets them back when
    /// they catch up.
    mutating func judgeLag(nowMs: UInt64) -> [Effect] {
        var effects: [Effect] = []
        guard settings.lagBlocksMax != .max, let best = bestHead else { return effects }
        for index in upstreams.indices {
            let state = upstreams[index]
            let lagging: Bool
            if let head = state.head {
                let behind = best.head - min(head, best.head)
                let stuck = behind > 0 && nowMs >= Failover.plus(state.headAdvancedMs, settings.lagMsMax)
                    && best.advancedMs > state.headAdvancedMs
                lagging = behind > settings.lagBlocksMax || stuck
            } else {
                lagging = false
            }
            if lagging != state.excluded {
                upstreams[index].excluded = lagging
                effects.append(.event(lagging ? "excluded_lagging" : "included", upstream: index))
            }
        }
        return effects
    }
}
