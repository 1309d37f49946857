import Consensus
import Wire

/// What simulated nodes send each other: the real envelope and its decoded message, as a node's receiving
/// edge hands them to the replica logic. A simulated node's own envelopes carry no signature: the simulated
/// network is authenticated by construction (an envelope's sender is its author), the way a real node's
/// edge has verified every signature before the replica sees it. What a signature proves on chain
/// (transactions, equivocation evidence) is signed for real. A reference, so the agenda moves a pointer.
final class SimMessage {
    let envelope: Envelope
    let message: Message

    init(_ envelope: Envelope, _ message: Message) {
        self.envelope = envelope
        self.message = message
    }

    /// An envelope made elsewhere (a client's transaction, the rollup's uplink): decoded as a node's edge
    /// decodes it (nil: it does not decode).
    init?(_ envelope: Envelope) {
        guard let message = try? Message(kind: envelope.kind, payload: envelope.payload) else { return nil }
        self.envelope = envelope
        self.message = message
    }

    /// An envelope this simulation built: it decodes, or the simulator is wrong.
    static func made(_ envelope: Envelope) -> SimMessage {
        guard let message = SimMessage(envelope) else { preconditionFailure("a simulated \(envelope.kind) does not decode") }
        return message
    }

    var kind: MessageKind { envelope.kind }
    /// What it takes on the wire (for bandwidth limits).
    var bytesCount: Int { envelope.bytes.count }
}
