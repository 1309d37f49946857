import RPC
import Testing

/// The failover policy driven by hand: each test is a script of requests, answers and timers, and
/// checks where the policy sent attempts and what it answered.
@Suite struct FailoverTests {
    static let three = [Failover.Upstream(name: "primary", tier: 0), Failover.Upstream(name: "backup1", tier: 1),
                        Failover.Upstream(name: "backup2", tier: 1)]

    static func sends(_ effects: [Failover.Effect]) -> [(request: UInt64, attempt: Int, upstream: Int)] {
        effects.compactMap {
            if case .send(let request, let attempt, let upstream) = $0 { return (request, attempt, upstream) }
            return nil
        }
    }

    static func response(_ effects: [Failover.Effect]) -> Failover.Response? {
        effects.compactMap { if case .respond(_, let response) = $0 { return response } else { return nil } }.first
    }

    static func settings(_ change: (inout Failover.Settings) -> Void = { _ in }) -> Failover.Settings {
        var settings = Failover.Settings()
        settings.backoffBaseMs = 0 // retries go out at once, so a script needs no retry timer
        settings.hedgeQuantile = 0
        change(&settings)
        return settings
    }

    @Test func refusedPrimaryIsRetriedOnABackupThenSkippedOnceItsBreakerOpens() {
        var policy = Failover.Instance(settings: Self.settings(), upstreams: Self.three, seed: 1)
        var now: UInt64 = 1_000
        for id in UInt64(1)...5 {
            let first = Self.sends(policy.begin(id, method: "eth_blockNumber", nowMs: now))
            #expect(first.map(\.upstream) == [0], "request \(id) starts on the primary (tier 0)")
            let retry = Self.sends(policy.onOutcome(id, attempt: 0, .connectFailed, nowMs: now))
            let backup = retry.first?.upstream ?? -1
            #expect(backup == 1 || backup == 2, "the retry goes to a backup, went to \(backup)")
            let done = policy.onOutcome(id, attempt: 1, .answered(blockNumber: 10 + id, digest: 0), nowMs: now + 2)
            #expect(Self.response(done) == .attempt(1))
            now += 10
        }
        // Five refusals in a row (breakerConsecutive) opened it at the fifth, for breakerOpenMs.
        #expect(policy.upstreams[0].breaker == .open(untilMs: 1_040 + 2_000))
        let sixth = Self.sends(policy.begin(6, method: "eth_blockNumber", nowMs: now))
        let goesToBackup = sixth.first.map { $0.upstream != 0 } ?? false
        #expect(goesToBackup, "with the primary's breaker open the first attempt skips it")
        #expect(policy.counters.retries == 5)
    }

    @Test func backupsOfOneTierShareTheLoadInTurn() {
        var policy = Failover.Instance(settings: Self.settings(), upstreams: Array(Self.three.dropFirst()), seed: 1)
        var used: [Int] = []
        for id in UInt64(1)...4 {
            let sent = Self.sends(policy.begin(id, method: "eth_chainId", nowMs: 100))
            used.append(sent[0].upstream)
            _ = policy.onOutcome(id, attempt: 0, .answered(blockNumber: nil, digest: 7), nowMs: 101)
        }
        #expect(used == [0, 1, 0, 1])
    }

    @Test func aTimedOutTransactionIsNotSentTwiceButARefusedOneIsRetried() {
        var policy = Failover.Instance(settings: Self.settings(), upstreams: Self.three, seed: 1)
        _ = policy.begin(1, method: "eth_sendRawTransaction", nowMs: 0)
        let afterTimeout = policy.onOutcome(1, attempt: 0, .timedOut, nowMs: 1_000)
        #expect(Self.sends(afterTimeout).isEmpty, "the upstream may have taken it: no second send")
        guard case .failure(let failure)? = Self.response(afterTimeout) else {
            Issue.record("expected a failure")
            return
        }
        #expect(failure.code == JSONRPC.Code.resourceUnavailable.rawValue)
        _ = policy.begin(2, method: "eth_sendRawTransaction", nowMs: 1_000)
        let afterRefusal = policy.onOutcome(2, attempt: 0, .connectFailed, nowMs: 1_001)
        #expect(Self.sends(afterRefusal).count == 1, "nothing was sent: a retry is safe")
    }

    @Test func aSlowAttemptIsHedgedAndTheFirstAnswerWins() {
        var policy = Failover.Instance(settings: Self.settings { $0.hedgeQuantile = 0.95; $0.hedgeAfterMsMin = 20 },
                                       upstreams: Self.three, seed: 1)
        // 40 fast answers from the primary teach the policy its p95 (5 ms, so the hedge waits the 20 ms floor).
        for id in UInt64(1)...40 {
            _ = policy.begin(id, method: "eth_blockNumber", nowMs: id * 100)
            _ = policy.onOutcome(id, attempt: 0, .answered(blockNumber: id, digest: 0), nowMs: id * 100 + 5)
        }
        let begin = policy.begin(99, method: "eth_getBalance", nowMs: 10_000)
        let hedgeAt = begin.compactMap { if case .schedule(_, .hedge, let at) = $0 { return at } else { return nil } }
        #expect(hedgeAt == [10_020])
        let hedge = Self.sends(policy.onTimer(99, .hedge, nowMs: 10_020))
        #expect(hedge.count == 1 && hedge[0].upstream != 0)
        let winner = policy.onOutcome(99, attempt: 1, .answered(blockNumber: nil, digest: 1), nowMs: 10_025)
        #expect(Self.response(winner) == .attempt(1))
        let late = policy.onOutcome(99, attempt: 0, .answered(blockNumber: nil, digest: 1), nowMs: 10_900)
        #expect(late.isEmpty, "the slow answer arrives after the client was answered")
        #expect(policy.counters.hedges == 1)
        #expect(policy.upstreams[0].failuresInWindow == 1, "losing a race it started ahead in counts against the primary")
    }

    @Test func aBlackHoledPrimaryIsLeftOutAfterAFewLostHedges() {
        var policy = Failover.Instance(settings: Self.settings { $0.hedgeQuantile = 0.95; $0.hedgeAfterMsMin = 20 },
                                       upstreams: Self.three, seed: 1)
        var now: UInt64 = 0
        var id: UInt64 = 0
        // The primary accepts and never answers; each request is hedged to a backup after 20 ms and answered.
        while policy.upstreams[0].breaker == .closed, id < 20 {
            id += 1
            let first = Self.sends(policy.begin(id, method: "eth_getBalance", nowMs: now))
            #expect(first.first?.upstream == 0)
            let hedge = Self.sends(policy.onTimer(id, .hedge, nowMs: now + 20))
            _ = policy.onOutcome(id, attempt: hedge[0].attempt, .answered(blockNumber: nil, digest: 1), nowMs: now + 22)
            now += 10
        }
        #expect(id == 5, "five lost races in a row (breakerConsecutive) open the breaker")
        let next = Self.sends(policy.begin(100, method: "eth_getBalance", nowMs: now))
        #expect(next.first.map { $0.upstream != 0 } ?? false, "and the next request goes straight to a backup")
    }

    @Test func theRetryBudgetCapsRetriesWhenEverythingFails() {
        var policy = Failover.Instance(settings: Self.settings { $0.retryBudgetRatio = 0; $0.retryBudgetBurst = 2;
                                                                 $0.breakerConsecutive = .max; $0.breakerFailures = .max },
                                       upstreams: Self.three, seed: 1)
        var errors = 0
        for id in UInt64(1)...20 {
            _ = policy.begin(id, method: "eth_blockNumber", nowMs: id)
            var attempt = 0
            var effects = policy.onOutcome(id, attempt: attempt, .failed("HTTP 503"), nowMs: id)
            while let next = Self.sends(effects).first {
                attempt = next.attempt
                effects = policy.onOutcome(id, attempt: attempt, .failed("HTTP 503"), nowMs: id)
            }
            if case .failure? = Self.response(effects) { errors += 1 }
        }
        #expect(errors == 20)
        #expect(policy.counters.retries == 2, "two saved tokens, no earnings: two retries in all")
        #expect(policy.counters.attempts == 22)
    }

    /// Two upstreams die at once with the budget empty: every request still reaches the third, because a
    /// refused connection put no load on anyone and moving on needs no token. An answer that failed is
    /// still a retry, and with no token it is the client's error.
    @Test func refusedConnectionsFailOverWithoutSpendingTheRetryBudget() {
        var policy = Failover.Instance(settings: Self.settings { $0.retryBudgetRatio = 0; $0.retryBudgetBurst = 0;
                                                                 $0.breakerConsecutive = .max; $0.breakerFailures = .max },
                                       upstreams: Self.three, seed: 1)
        var answered = 0
        for id in UInt64(1)...20 {
            var effects = policy.begin(id, method: "eth_blockNumber", nowMs: id)
            while let next = Self.sends(effects).first {
                let outcome: Failover.Outcome = next.upstream == 2 ? .answered(blockNumber: 7, digest: 1) : .connectFailed
                effects = policy.onOutcome(id, attempt: next.attempt, outcome, nowMs: id)
            }
            if case .attempt? = Self.response(effects) { answered += 1 }
        }
        #expect(answered == 20)
        #expect(policy.counters.attempts <= 60, "at most one attempt per upstream per request")
        // The third upstream answers 503 instead: delivered, failed, no token: an error.
        _ = policy.begin(21, method: "eth_blockNumber", nowMs: 30)
        let effects = policy.onOutcome(21, attempt: 0, .failed("HTTP 503"), nowMs: 30)
        #expect(Self.sends(effects).isEmpty)
        if case .failure? = Self.response(effects) {} else { Issue.record("expected a failure, got \(effects)") }
    }

    @Test func aLaggingUpstreamIsExcludedAndReadmittedWhenItCatchesUp() {
        var policy = Failover.Instance(settings: Self.settings { $0.lagBlocksMax = 8 }, upstreams: Self.three, seed: 1)
        let polls = policy.tick(nowMs: 0).filter { if case .poll = $0 { true } else { false } }
        #expect(polls.count == 3)
        _ = policy.onHead(1, 100, nowMs: 5)
        _ = policy.onHead(2, 100, nowMs: 5)
        let lag = policy.onHead(0, 80, nowMs: 5)
        #expect(lag.contains(.event("excluded_lagging", upstream: 0)))
        let sent = Self.sends(policy.begin(1, method: "eth_getBalance", nowMs: 6))
        #expect(sent.first.map { $0.upstream != 0 } ?? false, "the primary is 20 blocks behind: skipped")
        _ = policy.tick(nowMs: 300)
        let back = policy.onHead(0, 99, nowMs: 310)
        #expect(back.contains(.event("included", upstream: 0)))
    }

    @Test func aFrozenHeadIsExcludedWhenItStandsStillWhileTheBestMoves() {
        var policy = Failover.Instance(settings: Self.settings { $0.lagBlocksMax = 100; $0.lagMsMax = 1_000 },
                                       upstreams: Self.three, seed: 1)
        _ = policy.onHead(0, 50, nowMs: 0)
        _ = policy.onHead(1, 50, nowMs: 0)
        var excludedAt: UInt64?
        for step in UInt64(1)...30 {
            let effects = policy.onHead(1, 50 + step, nowMs: step * 100) + policy.onHead(0, 50, nowMs: step * 100)
            if excludedAt == nil, effects.contains(.event("excluded_lagging", upstream: 0)) { excludedAt = step * 100 }
        }
        #expect(excludedAt == 1_000, "excluded after lagMsMax standing still, at \(String(describing: excludedAt))")
    }

    @Test func theHeadAClientSeesNeverGoesBackward() {
        var policy = Failover.Instance(settings: Self.settings(), upstreams: Self.three, seed: 1)
        _ = policy.begin(1, method: "eth_blockNumber", nowMs: 0)
        #expect(Self.response(policy.onOutcome(1, attempt: 0, .answered(blockNumber: 100, digest: 0), nowMs: 1))
                == .attempt(0))
        _ = policy.begin(2, method: "eth_blockNumber", nowMs: 2)
        #expect(Self.response(policy.onOutcome(2, attempt: 0, .answered(blockNumber: 98, digest: 0), nowMs: 3))
                == .head(100))
        #expect(policy.counters.headClamped == 1)
    }

    @Test func anAnswerFarBehindTheBestHeadIsRefusedAndAskedElsewhere() {
        var policy = Failover.Instance(settings: Self.settings { $0.lagBlocksMax = 8 }, upstreams: Self.three, seed: 1)
        _ = policy.onHead(1, 200, nowMs: 0)
        _ = policy.onHead(0, 199, nowMs: 0)
        _ = policy.begin(1, method: "eth_blockNumber", nowMs: 1)
        let effects = policy.onOutcome(1, attempt: 0, .answered(blockNumber: 150, digest: 0), nowMs: 2)
        #expect(Self.response(effects) == nil)
        #expect(Self.sends(effects).count == 1)
        #expect(policy.counters.staleRefused == 1)
    }

    @Test func anOpenBreakerLetsOneProbeThroughAfterTheCoolOff() {
        var policy = Failover.Instance(settings: Self.settings { $0.breakerConsecutive = 2; $0.breakerOpenMs = 500 },
                                       upstreams: Array(Self.three.prefix(2)), seed: 1)
        for id in UInt64(1)...2 {
            _ = policy.begin(id, method: "eth_chainId", nowMs: id)
            _ = policy.onOutcome(id, attempt: 0, .timedOut, nowMs: id)
            _ = policy.onOutcome(id, attempt: 1, .answered(blockNumber: nil, digest: 0), nowMs: id)
        }
        #expect(policy.upstreams[0].breaker == .open(untilMs: 502))
        let halfOpen = policy.tick(nowMs: 502)
        #expect(halfOpen.contains(.event("breaker_half_open", upstream: 0)))
        let probe = Self.sends(policy.begin(10, method: "eth_chainId", nowMs: 503))
        #expect(probe.first?.upstream == 0, "the probe is a real request to the recovering primary")
        let second = Self.sends(policy.begin(11, method: "eth_chainId", nowMs: 503))
        #expect(second.first?.upstream == 1, "one probe at a time")
        let closed = policy.onOutcome(10, attempt: 0, .answered(blockNumber: nil, digest: 0), nowMs: 505)
        #expect(closed.contains(.event("breaker_closed", upstream: 0)))
    }

    @Test func whenEveryUpstreamLooksBadItFailsOpen() {
        var policy = Failover.Instance(settings: Self.settings { $0.breakerConsecutive = 1 },
                                       upstreams: Array(Self.three.prefix(2)), seed: 1)
        _ = policy.begin(1, method: "eth_chainId", nowMs: 0)
        _ = policy.onOutcome(1, attempt: 0, .failed("HTTP 500"), nowMs: 1)
        _ = policy.onOutcome(1, attempt: 1, .failed("HTTP 500"), nowMs: 2)
        let sent = Self.sends(policy.begin(2, method: "eth_chainId", nowMs: 3))
        #expect(sent.count == 1, "both breakers are open, but refusing outright helps no one")
        #expect(policy.counters.failedOpen == 1)
        var closed = Failover.Instance(settings: Self.settings { $0.breakerConsecutive = 1; $0.failOpen = false },
                                       upstreams: Array(Self.three.prefix(2)), seed: 1)
        _ = closed.begin(1, method: "eth_chainId", nowMs: 0)
        _ = closed.onOutcome(1, attempt: 0, .failed("HTTP 500"), nowMs: 1)
        _ = closed.onOutcome(1, attempt: 1, .failed("HTTP 500"), nowMs: 2)
        let refused = closed.begin(2, method: "eth_chainId", nowMs: 3)
        #expect(Self.sends(refused).isEmpty)
        guard case .failure? = Self.response(refused) else {
            Issue.record("fail-closed answers with an error")
            return
        }
    }

    @Test func aQuorumReadAnswersWhatTwoUpstreamsAgreeOn() {
        var policy = Failover.Instance(settings: Self.settings { $0.quorum = 2 }, upstreams: Self.three, seed: 1)
        let first = Self.sends(policy.begin(1, method: "eth_getBalance", nowMs: 0))
        #expect(first.count == 2)
        _ = policy.onOutcome(1, attempt: 0, .answered(blockNumber: nil, digest: 666), nowMs: 1)
        let third = policy.onOutcome(1, attempt: 1, .answered(blockNumber: nil, digest: 42), nowMs: 2)
        #expect(Self.sends(third).count == 1, "a disagreement asks the third upstream")
        let done = policy.onOutcome(1, attempt: 2, .answered(blockNumber: nil, digest: 42), nowMs: 3)
        #expect(Self.response(done) == .attempt(2))
        let liar = first.first { $0.attempt == 0 }!.upstream
        #expect(policy.upstreams[liar].failuresInWindow == 1, "the outvoted upstream's breaker counts the lie")
    }

    @Test func theDeadlineAnswersARequestNoUpstreamFinished() {
        var policy = Failover.Instance(settings: Self.settings(), upstreams: Self.three, seed: 1)
        let begin = policy.begin(1, method: "eth_chainId", nowMs: 0)
        #expect(begin.contains(.schedule(request: 1, .deadline, atMs: 3_000)))
        guard case .failure(let failure)? = Self.response(policy.onTimer(1, .deadline, nowMs: 3_000)) else {
            Issue.record("the deadline answers with a failure")
            return
        }
        #expect(failure.message.contains("deadline"))
        #expect(policy.openRequests == 0)
    }

    @Test func naiveFallbackGoesDownTheListWithFixedRetries() {
        var policy = Failover.Instance(settings: .naiveFallback(retries: 2), upstreams: Self.three, seed: 1)
        var order: [Int] = []
        var effects = policy.begin(1, method: "eth_sendRawTransaction", nowMs: 0)
        while let next = Self.sends(effects).first {
            order.append(next.upstream)
            effects = policy.onOutcome(1, attempt: next.attempt, .timedOut, nowMs: 1)
        }
        #expect(order == [0, 1, 2], "primary, then each backup in order, even for a transaction")
        // "Never" settings are UInt64.max: a head answer must not overflow against them.
        _ = policy.begin(2, method: "eth_blockNumber", nowMs: 2)
        let head = policy.onOutcome(2, attempt: 0, .answered(blockNumber: 1_000, digest: 0), nowMs: 3)
        #expect(Self.response(head) == .attempt(0))
        #expect(policy.tick(nowMs: 10_000).isEmpty, "no polling, no breaker")
    }
}
