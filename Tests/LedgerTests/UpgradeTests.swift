import Foundation
import Sodium
import Testing
import Wire
@testable import Ledger

@Suite struct RulesVersionTests {
    let domain = Domain(chainId: "rules-test")
    let alice = SigningKey(label: "alice")
    let bob = SigningKey(label: "bob")
    let proposer = SigningKey(label: "proposer")

    func ledger(version: UInt16) throws -> Ledger {
        var ledger = try Ledger(genesis: Genesis(
            chainId: "rules-test", protocolVersion: 1, genesisTimeMs: 0,
            validators: [.init(name: "p", publicKey: proposer.publicKey, stake: 1)],
            allocations: [.init(publicKey: alice.publicKey, balance: 1_000)]))
        ledger.rulesVersion = version
        return ledger
    }

    func block(on ledger: Ledger, _ txs: [Envelope]) -> Block {
        Block(header: BlockHeader(protocolVersion: 1, height: ledger.height + 1, timeMs: 1,
                                  proposer: proposer.publicKey, previousBlockId: ledger.lastBlockId,
                                  stateRoot: ledger.stateRoot, txRoot: Block.txRoot(txs), txCount: UInt32(txs.count)),
              txs: txs)
    }

    @Test(arguments: [(UInt64(0), UInt64(0), UInt64(0)), (1, 1, 0), (2, 2, 1), (3, 3, 1), (7, 7, 3), (10, 10, 5)])
    func proposerShareByVersion(fee: UInt64, v1: UInt64, v2: UInt64) {
        #expect(Rules.proposerShare(fee: fee, version: 1) == v1)
        #expect(Rules.proposerShare(fee: fee, version: 2) == v2)
    }

    /// The same block executes into different roots under v1 and v2 once it carries a fee; an empty
    /// block does not tell them apart.
    @Test func versionsDivergeOnTheFirstFee() throws {
        var v1 = try ledger(version: 1)
        var v2 = try ledger(version: 2)
        let empty = block(on: v1, [])
        v1.execute(empty)
        v2.execute(empty)
        #expect(v1.stateRoot == v2.stateRoot)
        let tx = Envelope(kind: .transfer, payload: Transfer(to: bob.publicKey, amount: 5, fee: 1, nonce: 0).encoded,
                          domain: domain, key: alice)
        let paying = block(on: v1, [tx])
        v1.execute(paying)
        v2.execute(paying)
        #expect(v1.stateRoot != v2.stateRoot)
        #expect(v1.account(proposer.publicKey).balance == 1 && v2.account(proposer.publicKey).balance == 0)
        #expect(v1.account(alice.publicKey) == v2.account(alice.publicKey)) // the sender pays the same
    }

    static let plan = UpgradePlan(name: "fee-burn", height: 100, version: 2)

    @Test(arguments: [
        // (height, binary, plans, expected)
        (UInt64(1), UInt16(1), [UpgradePlan](), RulesSchedule.Decision.apply(version: 1)),
        (1, 2, [], .apply(version: 2)),                   // uncoordinated v2 binary: its own rules at once
        (99, 2, [plan], .apply(version: 1)),              // scheduled: waits for the plan's height
        (100, 2, [plan], .apply(version: 2)),
        (99, 1, [plan], .apply(version: 1)),
        (100, 1, [plan], .upgradeNeeded(plan)),           // the old binary must stop at H
        (500, 3, [plan], .apply(version: 2)),             // a newer binary follows the plan
    ])
    func scheduleDecides(height: UInt64, binary: UInt16, plans: [UpgradePlan], expected: RulesSchedule.Decision) {
        #expect(RulesSchedule.decide(height: height, binaryVersion: binary, plans: plans) == expected)
    }
}

@Suite struct UpgradePlanTests {
    func genesis(_ plans: [UpgradePlan]?) -> Genesis {
        Genesis(chainId: "plans", protocolVersion: 1, genesisTimeMs: 0, validators: [], allocations: [], upgrades: plans)
    }

    @Test func plansMustClimbInHeightAndVersion() throws {
        #expect(try genesis(nil).upgradePlans().isEmpty)
        let good = [UpgradePlan(name: "a", height: 10, version: 2), UpgradePlan(name: "b", height: 20, version: 3)]
        #expect(try genesis(good).upgradePlans() == good)
        #expect(throws: Genesis.Problem.badUpgrade(name: "b", problem: "height 10 must be above 10 (a)")) {
            try genesis([good[0], UpgradePlan(name: "b", height: 10, version: 3)]).upgradePlans()
        }
        #expect(throws: Genesis.Problem.badUpgrade(name: "x", problem: "version 1 must be above 1 (genesis)")) {
            try genesis([UpgradePlan(name: "x", height: 5, version: 1)]).upgradePlans()
        }
        // Decoding a genesis written before plans existed still works.
        let json = #"{"chainId":"c","protocolVersion":1,"genesisTimeMs":0,"validators":[],"allocations":[]}"#
        let decoded = try JSONDecoder().decode(Genesis.self, from: Data(json.utf8))
        #expect(decoded.upgrades == nil)
    }
}

@Suite struct VersionMinAndHandshakeTests {
    static let plan = UpgradePlan(name: "fee-burn", height: 100, version: 2)

    /// A binary that dropped the old rules (`versionMin` 2) must not run heights that still use them.
    @Test(arguments: [
        (UInt64(99), UInt16(2), [plan], RulesSchedule.Decision.tooEarly(rules: 1, plan: plan)),
        (100, 2, [plan], .apply(version: 2)),
        (1, 2, [], .apply(version: 2)),                  // no plan: nothing older to refuse
        (100, 1, [plan], .upgradeNeeded(plan)),          // too old wins over too new (versionMin 1 here)
    ])
    func versionMinRefusesOlderRules(height: UInt64, versionMin: UInt16, plans: [UpgradePlan],
                                     expected: RulesSchedule.Decision) {
        let binary: UInt16 = expected == .upgradeNeeded(Self.plan) ? 1 : 2
        #expect(RulesSchedule.decide(height: height, binaryVersion: binary, versionMin: min(versionMin, binary),
                                     plans: plans) == expected)
    }

    typealias Identity = HandshakePolicy.Identity
    static let v1 = Identity(forkId: 0, protocolVersion: 1, version: 1, versionMin: 1)
    static let v2 = Identity(forkId: 0, protocolVersion: 1, version: 2, versionMin: 1)

    @Test func forkIdAndProtocolVersionAreAlwaysChecked() {
        var fork1 = Self.v1
        fork1.forkId = 1
        #expect(HandshakePolicy.refusal(ours: Self.v1, theirs: fork1, height: 5, plans: [], checkRules: false)
                == "fork id 1, ours 0")
        var wire2 = Self.v1
        wire2.protocolVersion = 2
        #expect(HandshakePolicy.refusal(ours: Self.v1, theirs: wire2, height: 5, plans: [], checkRules: false)
                == "protocol version 2, ours 1")
        #expect(HandshakePolicy.refusal(ours: Self.v1, theirs: Self.v2, height: 5, plans: [], checkRules: false) == nil)
    }

    @Test func rulesAreComparedOnlyWhenAsked() {
        // Uncoordinated: a v2 binary applies v2 rules at once, so it would compute other roots.
        let refusal = HandshakePolicy.refusal(ours: Self.v1, theirs: Self.v2, height: 5, plans: [], checkRules: true)
        #expect(refusal == "binary version 2 applies rules v2 here, ours applies rules v1")
        // With a plan both apply v1 before its height: an early binary upgrade is compatible.
        #expect(HandshakePolicy.refusal(ours: Self.v1, theirs: Self.v2, height: 99, plans: [Self.plan],
                                        checkRules: true) == nil)
        #expect(HandshakePolicy.refusal(ours: Self.v2, theirs: Self.v1, height: 100, plans: [Self.plan],
                                        checkRules: true)
                == "binary version 1 needs upgrade fee-burn here, ours applies rules v2")
    }
}
