@testable import Consensus
import Ledger
import Sodium
import Testing
import Wire

/// Which proposals a replica takes, when a complete one goes to consensus, and which wait for the next
/// height: the rules both engines share (the block's transport is each shell's own).
@Suite struct ReplicaProposalsTests {
    typealias Book = Replica.Proposals<String>

    static func block(height: UInt64, time: UInt64 = 0) -> Block {
        let header = BlockHeader(protocolVersion: 1, height: height, timeMs: time, proposer: SigningKey(label: "v1").publicKey,
                                 previousBlockId: .zero, stateRoot: .zero, txRoot: Block.txRoot([]), txCount: 0)
        return Block(header: header, txs: [])
    }

    static func proposal(_ block: Block, round: UInt32 = 0, polRound: Int32 = -1) -> Proposal {
        Proposal(height: block.header.height, round: round, polRound: polRound, blockId: block.id, partsRoot: .zero,
                 partCount: 1, blockBytes: 100)
    }

    @Test func takesTheCurrentAndNextHeightsFromTheRoundsProposerOnce() {
        var book = Book()
        let at = (height: UInt64(5), round: UInt32(2))
        func admit(_ proposal: Proposal, from: Int, proposer: Int = 1) -> Book.Admission {
            book.admit(proposal, from: from, body: "assembly", at: at, roundsAheadMax: 4, proposer: proposer)
        }
        let five = Self.block(height: 5)
        #expect(admit(Self.proposal(Self.block(height: 4)), from: 1) == .ignored)       // committed already
        #expect(admit(Self.proposal(Self.block(height: 7)), from: 1) == .ignored)       // two ahead: sync instead
        #expect(admit(Self.proposal(five, round: 7), from: 1) == .ignored)              // too many rounds ahead
        #expect(admit(Self.proposal(five, round: 2), from: 2) == .ignored)              // not the proposer
        #expect(admit(Self.proposal(five, round: 2), from: 1) == .accepted)
        #expect(admit(Self.proposal(five, round: 2), from: 1) == .duplicate)
        #expect(admit(Self.proposal(Self.block(height: 5, time: 1), round: 2), from: 1) == .conflicting)
        #expect(admit(Self.proposal(Self.block(height: 6), round: 0), from: 1) == .accepted)
        #expect(book[Replica.ProposalKey(height: 5, round: 2)]?.body == "assembly")
    }

    @Test func aCompleteProposalGoesToConsensusNowOnlyAtTheCurrentUncommittedHeight() {
        var book = Book()
        let five = Self.block(height: 5)
        let six = Self.block(height: 6)
        _ = book.admit(Self.proposal(five), from: 1, body: "", at: (5, 0), roundsAheadMax: 4, proposer: 1)
        _ = book.admit(Self.proposal(six), from: 1, body: "", at: (5, 0), roundsAheadMax: 4, proposer: 1)
        let keyFive = Replica.ProposalKey(height: 5, round: 0)
        guard case .now(let proposal, let from, let block) = book.complete(keyFive, block: five, consensusHeight: 5,
                                                                           storeHeight: 4) else {
            Issue.record("height 5's proposal goes to consensus at height 5")
            return
        }
        #expect(proposal.blockId == five.id && from == 1 && block.id == five.id)
        guard case .nothing = book.complete(keyFive, block: five, consensusHeight: 5, storeHeight: 4) else {
            Issue.record("a delivered proposal is not delivered twice")
            return
        }
        guard case .nextHeight = book.complete(.init(height: 6, round: 0), block: six, consensusHeight: 5,
                                               storeHeight: 4) else {
            Issue.record("height 6's proposal waits for height 6")
            return
        }
        // Height 6 starts: its early proposal comes back to be checked; height 5's are gone.
        let early = book.startedHeight(6, me: 0)
        #expect(early.map(\.block.id) == [six.id])
        #expect(book[keyFive] == nil && book.block(five.id) == nil && book.block(six.id) != nil)
        // Our own proposals are held as delivered and never come back as someone else's.
        book.proposed(Self.proposal(Self.block(height: 7)), from: 0, block: Self.block(height: 7), body: "")
        #expect(book.startedHeight(7, me: 0).isEmpty)
    }

    @Test func aProposalCommittedHereAlreadyIsNotDelivered() {
        var book = Book()
        let five = Self.block(height: 5)
        _ = book.admit(Self.proposal(five, round: 1), from: 1, body: "", at: (5, 0), roundsAheadMax: 4, proposer: 1)
        guard case .nothing = book.complete(.init(height: 5, round: 1), block: five, consensusHeight: 5,
                                            storeHeight: 5) else {
            Issue.record("the ledger has moved past height 5: an honest late proposal must not be judged")
            return
        }
        #expect(book.block(five.id) != nil) // still known: the core may decide it
    }

    @Test func aFreshProposalMustNameTheRoundsProposerAReProposalItsBuilder() {
        let keys = (1...4).map { SigningKey(label: "v\($0)") }
        let validators = ValidatorSet(members: keys.enumerated().map {
            ValidatorSet.Member(name: "v\($0.offset + 1)", publicKey: $0.element.publicKey, stake: 10)
        })
        let key = Replica.ProposalKey(height: 3, round: 1)
        let proposer = validators.members[validators.proposer(height: 3, round: 1)].publicKey
        #expect(Replica.expectedProposer(Self.proposal(Self.block(height: 3)), validators: validators, key: key) == proposer)
        #expect(Replica.expectedProposer(nil, validators: validators, key: key) == proposer)
        #expect(Replica.expectedProposer(Self.proposal(Self.block(height: 3), polRound: 0), validators: validators,
                                      key: key) == nil)
    }
}
