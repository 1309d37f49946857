import Consensus
import Ledger
import Sodium
import Wire

/// What simulated nodes send each other: the real messages' content, without bytes or signatures.
/// The simulated network is authenticated by construction (a message's `from` is its author), the
/// way a real node's edge has verified every signature before the core sees the message; what a
/// signature proves on chain (equivocation evidence) is signed for real.
enum SimMessage {
    // The large, rarer cases are boxed (`indirect`) so that a vote, the common message, is a small
    // value: the agenda moves every pending message each time it reorders.
    indirect case proposal(Proposal, from: Int)
    /// The proposed block (a real proposal's parts, reassembled). Nil: parts that do not match their
    /// proofs (`bad_parts`), so the block never assembles.
    indirect case block(height: UInt64, round: UInt32, Block?, id: Bytes32?, from: Int)
    /// `foreignChain`: signed for another chain id (`other_chain`); the receiving edge refuses it.
    case vote(Tendermint.VoteType, Vote, from: Int, foreignChain: Bool)
    case status(committedHeight: UInt64)
    case blockRequest(height: UInt64)
    indirect case blockResponse(CommittedBlock)
    indirect case tx(Envelope)
    /// The handshake: the sender's binary (the fork it names, signed for `signedForFork`), and whether it
    /// wants an answer.
    case hello(HandshakePolicy.Identity, signedForFork: UInt32, replyWanted: Bool)

    var kind: MessageKind {
        switch self {
        case .proposal: return .proposal
        case .block: return .blockPart
        case .vote(let type, _, _, _): return type.kind
        case .status: return .status
        case .blockRequest: return .blockRequest
        case .blockResponse: return .syncPart
        case .tx(let envelope): return envelope.kind
        case .hello: return .hello
        }
    }

    /// About what the real message takes on the wire (for bandwidth limits).
    var bytesCount: Int {
        switch self {
        case .proposal: return 200
        case .block(_, _, let block, _, _): return 220 + (block?.txs.reduce(0) { $0 + $1.bytes.count + 2 } ?? 0)
        case .vote: return 160
        case .status, .blockRequest: return 130
        case .blockResponse(let committed): return 300 + committed.block.txs.reduce(0) { $0 + $1.bytes.count + 2 }
        case .tx(let envelope): return envelope.bytes.count
        case .hello: return 140
        }
    }
}
