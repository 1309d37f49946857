import FraudProof
import Sodium
import Wire

/// The dispute contract's parameters, fixed in genesis (every validator must use the same).
public struct DisputeSettings: Codable, Sendable, Equatable {
    /// L1 blocks after an assertion during which it can be challenged.
    public var windowBlocks: UInt64
    /// Each side's chess clock in a game, in L1 blocks.
    public var clockBlocks: UInt64
    public var assertionBond: UInt64
    public var challengeBond: UInt64

    /// Games against one assertion (each challenger pays a bond; past this a challenge is refused).
    public static let gamesMax = 32
    /// Batches L1 keeps waiting for confirmation; past this the inbox refuses new batches.
    public static let batchesMax = 1_024

    public init(windowBlocks: UInt64, clockBlocks: UInt64, assertionBond: UInt64, challengeBond: UInt64) {
        self.windowBlocks = windowBlocks
        self.clockBlocks = clockBlocks
        self.assertionBond = assertionBond
        self.challengeBond = challengeBond
    }
}

/// A batch L1 has taken whole and found well-formed: what its machine input is.
public struct BatchRecord: Sendable, Equatable {
    public var index: UInt64
    /// The well-formed batch before it (nil: the first), whose assertion must be the parent.
    public var previous: UInt64?
    public var inputRoot: Bytes32
    public var itemCount: UInt64
    /// Machine steps until halted, and the trace length (the next power of two).
    public var steps: Int
    public var length: Int
    public var firstHeight: UInt64
    public var lastHeight: UInt64
    public var l1Height: UInt64
}

/// One challenge against an assertion: the challenger, its bond, and the bisection game.
public struct DisputeGame: Sendable, Equatable {
    public let challenger: PublicKey
    public let bond: UInt64
    public let openedAt: UInt64
    public internal(set) var game: Bisection.Game
    /// The bond (and the proposer's share) has been paid out.
    public internal(set) var settled = false
}

public struct AssertionRecord: Sendable, Equatable {
    public let id: Bytes32
    public let assertion: Assertion
    /// The agreed start (the machine on the parent's root) and the claimed end (halted on `root`).
    public let startHash: Bytes32
    public let endHash: Bytes32
    public let length: Int
    public let lastHeight: UInt64
    public let createdAt: UInt64
    public let bond: UInt64
    public internal(set) var games: [DisputeGame] = []
    /// Confirmed (a defeated assertion is removed, not kept).
    public internal(set) var confirmed = false

    /// The last L1 height at which it can be challenged.
    public func windowEnd(_ settings: DisputeSettings) -> UInt64 {
        let (end, overflow) = createdAt.addingReportingOverflow(settings.windowBlocks)
        return overflow ? .max : end
    }
}

/// What the dispute contract did in one L1 block, in order (for nodes' events and agents).
public enum DisputeEvent: Sendable, Equatable {
    /// A batch taken whole and well-formed, with its machine input (agents execute it).
    case batchRecorded(BatchRecord, items: [Machine.Item])
    case batchVoid(index: UInt64, reason: String)
    case asserted(id: Bytes32, batch: UInt64, root: Bytes32, parent: Bytes32, length: Int, windowEnd: UInt64)
    case challenged(assertion: Bytes32, game: Int, challenger: PublicKey, endHash: Bytes32)
    case moved(assertion: Bytes32, game: Int, side: Bisection.Side, index: Int, low: Int, high: Int,
               clockProposer: UInt64, clockChallenger: UInt64)
    case oneStep(assertion: Bytes32, game: Int, step: Int)
    /// A game over: who won and why, the moves made, both clocks, and where the bonds went.
    case gameEnded(assertion: Bytes32, game: Int, batch: UInt64, challenger: PublicKey, outcome: Bisection.Outcome,
                   bisections: Int, clockProposer: UInt64, clockChallenger: UInt64, settlement: Settlement)
    case confirmed(id: Bytes32, batch: UInt64, root: Bytes32, lastHeight: UInt64)
    /// An assertion removed: defeated in a game, or built on one that was.
    case rejected(id: Bytes32, batch: UInt64, root: Bytes32, reason: String)
}

/// Where bonds went when a game ended.
public struct Settlement: Sendable, Equatable {
    /// Paid to the winner (its own bond back plus half the loser's, or nothing more if the loser's bond
    /// had already been paid to an earlier winner).
    public var toWinner: UInt64
    public var burned: UInt64
    /// Bonds returned without a loss (other games closed because the assertion fell).
    public var refunded: UInt64
}

/// The dispute contract's state inside the L1 ledger (Topologies/README.md, "Fraud proofs"): batches as machine input,
/// assertions, games, bonds held and burned. Its digest is part of the L1 state root, so every
/// validator replaying L1 reaches the same dispute state.
public struct Disputes: Sendable {
    public let settings: DisputeSettings
    /// What the step machine needs to execute L2 steps, as the L2 nodes have it.
    public let context: Machine.Context
    /// The L2 genesis state root: the start of the first batch.
    public let genesisRoot: Bytes32
    var assembler = BatchAssembler()
    /// Well-formed batches not confirmed yet, by index.
    public internal(set) var batches: [UInt64: BatchRecord] = [:]
    public internal(set) var lastBatch: UInt64?
    /// The L2 head the well-formed batches reach.
    public internal(set) var l2Height: UInt64 = 0
    public internal(set) var l2HeadId: Bytes32
    /// Pending assertions and the confirmed tip, by id.
    public internal(set) var assertions: [Bytes32: AssertionRecord] = [:]
    /// The live (pending or confirmed) assertion of each batch.
    public internal(set) var byBatch: [UInt64: Bytes32] = [:]
    /// The newest confirmed assertion (zero: the genesis), its batch and root.
    public internal(set) var confirmedId = Bytes32.zero
    public internal(set) var confirmedBatch: UInt64?
    public internal(set) var confirmedRoot: Bytes32
    /// Bonds the contract holds, and bonds burned so far.
    public internal(set) var held: UInt64 = 0
    public internal(set) var burned: UInt64 = 0

    init(settings: DisputeSettings, context: Machine.Context, genesisRoot: Bytes32, l2GenesisId: Bytes32) {
        self.settings = settings
        self.context = context
        self.genesisRoot = genesisRoot
        self.confirmedRoot = genesisRoot
        self.l2HeadId = l2GenesisId
    }

    /// Games being played (no outcome yet).
    public var gamesOpen: Int {
        assertions.values.reduce(0) { $0 + $1.games.filter { $0.game.outcome == nil }.count }
    }

    /// The root an assertion with this parent starts from (nil: not a live assertion).
    public func root(of parent: Bytes32) -> Bytes32? {
        parent == .zero ? genesisRoot : assertions[parent]?.assertion.root
    }

    /// The assertion a new assertion of `batch` must build on: the live assertion of the batch before
    /// (zero for the first batch); nil while that one does not exist.
    public func expectedParent(of record: BatchRecord) -> Bytes32? {
        guard let previous = record.previous else { return .zero }
        return byBatch[previous]
    }

    /// A digest of the whole contract state: equal on every validator that executed the same L1 blocks.
    public var digest: Bytes32 {
        var writer = WireWriter(capacity: 512)
        writer.bytes32(confirmedId)
        writer.u64(confirmedBatch.map { $0 + 1 } ?? 0)
        writer.u64(held)
        writer.u64(burned)
        writer.u64(l2Height)
        writer.bytes32(l2HeadId)
        for record in batches.values.sorted(by: { $0.index < $1.index }) {
            writer.u64(record.index)
            writer.bytes32(record.inputRoot)
            writer.u64(record.itemCount)
        }
        for record in orderedAssertions {
            writer.bytes32(record.id)
            writer.u64(record.createdAt)
            writer.bool(record.confirmed)
            for entry in record.games {
                writer.publicKey(entry.challenger)
                writer.bool(entry.settled)
                Disputes.encode(entry.game, to: &writer)
            }
        }
        return Blake2b.hash(writer.bytes)
    }

    /// Assertions by batch, then id: the order the contract visits them in.
    public var orderedAssertions: [AssertionRecord] {
        assertions.values.sorted { a, b in
            a.assertion.batch != b.assertion.batch ? a.assertion.batch < b.assertion.batch : a.id < b.id
        }
    }

    private static func encode(_ game: Bisection.Game, to writer: inout WireWriter) {
        writer.bytes32(game.challengerCommitment)
        writer.u64(UInt64(game.low))
        writer.u64(UInt64(game.high))
        writer.bytes32(game.agreed)
        writer.bytes32(game.proposerAtHigh)
        writer.bytes32(game.challengerAtHigh)
        writer.bytes32(game.proposerAtMid ?? .zero)
        writer.bool(game.turn == .proposer)
        writer.u64(game.clockProposer)
        writer.u64(game.clockChallenger)
        writer.u64(game.turnStartedAt)
        writer.u8(game.outcome.map { $0.winner == .proposer ? 1 : 2 } ?? 0)
    }
}
