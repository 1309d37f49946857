import Testing
@testable import Liveness

@Suite struct LinearizabilityTests {
    typealias Op = Linearizability.Operation

    static func write(_ id: Int, _ value: Int, _ from: UInt64, _ to: UInt64?) -> Op {
        Op(id: id, kind: .write(value), invokeMs: from, completeMs: to)
    }

    static func read(_ id: Int, _ value: Int?, _ from: UInt64, _ to: UInt64) -> Op {
        Op(id: id, kind: .read(value), invokeMs: from, completeMs: to)
    }

    @Test func sequentialHistoryIsLinearizable() {
        let history = [Self.read(1, nil, 0, 1), Self.write(2, 5, 2, 3), Self.read(3, 5, 4, 5), Self.write(4, 6, 6, 7),
                       Self.read(5, 6, 8, 9)]
        guard case .linearizable = Linearizability.check(history) else { Issue.record("\(Linearizability.check(history))"); return }
    }

    @Test func aStaleReadAfterANewerWriteCompletedIsAViolation() {
        // 6 is acknowledged at 7; a read that begins at 8 still sees 5 — what a stale member would serve.
        let history = [Self.write(1, 5, 0, 3), Self.write(2, 6, 4, 7), Self.read(3, 5, 8, 9)]
        #expect(Linearizability.check(history) == .violation(linearizedMax: 2, stuckAt: [3]))
    }

    @Test func concurrentOperationsMayTakeEitherOrder() {
        for seen in [nil, 1] as [Int?] {
            let history = [Self.write(1, 1, 0, 10), Self.read(2, seen, 5, 6)]
            guard case .linearizable = Linearizability.check(history) else { Issue.record("read \(String(describing: seen))"); return }
        }
        // But once the read saw the new value, a later read may not see the old one.
        let history = [Self.write(1, 1, 0, 10), Self.read(2, 1, 2, 3), Self.read(3, nil, 4, 5)]
        guard case .violation = Linearizability.check(history) else { Issue.record("went back in time"); return }
    }

    @Test func aWriteWithUnknownOutcomeMayOrMayNotHaveHappened() {
        for seen in [nil, 7] as [Int?] {
            let history = [Self.write(1, 7, 0, nil), Self.read(2, seen, 100, 101)]
            guard case .linearizable = Linearizability.check(history) else { Issue.record("read \(String(describing: seen))"); return }
        }
        // …but not before it began.
        let early = [Self.read(1, 7, 0, 1), Self.write(2, 7, 5, nil)]
        guard case .violation = Linearizability.check(early) else { Issue.record("read before the write began"); return }
    }

    @Test func aValueNobodyWroteIsAViolation() {
        guard case .violation = Linearizability.check([Self.write(1, 1, 0, 1), Self.read(2, 9, 2, 3)]) else {
            Issue.record("a phantom value passed")
            return
        }
    }

    /// Three clients on one register, each operation overlapping the others' (a real register behind
    /// them, so the history is linearizable): thousands of operations need few states.
    @Test func longConcurrentHistoriesStayCheap() {
        var generator = SystemRandomNumberGenerator()
        var history: [Op] = []
        var value: Int?
        var clock: UInt64 = 0
        for id in 0..<3_000 {
            let invoke = clock
            let takesEffect = clock + UInt64.random(in: 1...5, using: &generator)
            clock = takesEffect
            if Bool.random(using: &generator) {
                value = id
                history.append(Self.write(id, id, invoke, takesEffect + UInt64.random(in: 0...6, using: &generator)))
            } else {
                history.append(Self.read(id, value, invoke, takesEffect + UInt64.random(in: 0...6, using: &generator)))
            }
        }
        guard case .linearizable(let states) = Linearizability.check(history) else {
            Issue.record("a real register's history failed")
            return
        }
        #expect(states < 60_000, "\(states) states for 3000 operations")
        #expect(Linearizability.check(history, statesMax: 100) == .undecided(statesExplored: 100))
    }
}
