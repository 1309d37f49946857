import DequeModule
import Sodium
import Wire

/// The edge of a node: turns a datagram into a verified, typed message or a counted rejection.
/// De-duplication happens before verification (exact bytes), so a message is verified once.
public struct Ingress: Sendable {
    public enum Reject: String, Sendable, CaseIterable {
        case oversized, malformed, badSignature = "bad_signature", wrongChain = "wrong_chain"
        case wrongFork = "wrong_fork", unknownSender = "unknown_sender", duplicate
    }

    public enum Outcome: Sendable {
        case accepted(Envelope, Message)
        case rejected(Reject, detail: String)
    }

    public let domain: Domain
    public let datagramBytesMax: Int
    /// Keys allowed to send anything but transactions (validators and cluster nodes).
    public let members: Set<PublicKey>
    public let seenMax: Int
    private var seen: Set<Bytes32> = []
    private var seenOrder: Deque<Bytes32> = []

    public init(domain: Domain, datagramBytesMax: Int, members: Set<PublicKey>, seenMax: Int = 200_000) {
        self.domain = domain
        self.datagramBytesMax = datagramBytesMax
        self.members = members
        self.seenMax = seenMax
    }

    public var seenCount: Int { seen.count }

    /// Decodes and checks everything but the signature; cheap, so junk is shed before the expensive step.
    public func precheck(_ bytes: [UInt8]) -> Result<(Envelope, Message), RejectError> {
        guard bytes.count <= datagramBytesMax else {
            return .failure(RejectError(.oversized, "\(bytes.count) bytes, max \(datagramBytesMax)"))
        }
        let envelope: Envelope
        let message: Message
        do {
            envelope = try Envelope(decoding: bytes, payloadBytesMax: datagramBytesMax)
            message = try Message(kind: envelope.kind, payload: envelope.payload)
        } catch {
            return .failure(RejectError(.malformed, error.description))
        }
        if envelope.kind != .transfer && !members.contains(envelope.sender) {
            return .failure(RejectError(.unknownSender, "\(envelope.kind) from \(envelope.sender)"))
        }
        return .success((envelope, message))
    }

    public struct RejectError: Error, Sendable {
        public let reason: Reject
        public let detail: String
        init(_ reason: Reject, _ detail: String) {
            self.reason = reason
            self.detail = detail
        }
    }

    /// The full path: precheck, de-duplicate, verify the signature, remember the id.
    public mutating func admit(_ bytes: [UInt8]) -> Outcome {
        let envelope: Envelope
        let message: Message
        switch precheck(bytes) {
        case .failure(let error): return .rejected(error.reason, detail: error.detail)
        case .success(let pair): (envelope, message) = pair
        }
        let id = envelope.id
        if seen.contains(id) { return .rejected(.duplicate, detail: "") }
        switch envelope.verify(domain: domain) {
        case .valid: break
        case .badSignature: return .rejected(.badSignature, detail: "\(envelope.kind) from \(envelope.sender)")
        case .wrongChain: return .rejected(.wrongChain, detail: "chain tag \(envelope.chainTag)")
        case .wrongFork: return .rejected(.wrongFork, detail: "fork \(envelope.forkId)")
        }
        remember(id)
        return .accepted(envelope, message)
    }

    /// Marks our own messages as seen so relays of them are not processed again.
    public mutating func remember(_ id: Bytes32) {
        guard seen.insert(id).inserted else { return }
        seenOrder.append(id)
        if seenOrder.count > seenMax, let oldest = seenOrder.popFirst() {
            seen.remove(oldest)
        }
    }
}
