import DequeModule
import Sodium
import Wire

/// The edge of a node: turns a datagram into a verified, typed message or a counted rejection.
/// De-duplication happens before verification (exact bytes), so gossip copies cost a hash, not a
/// signature check. It forgets after `seenTtlMs`: a message re-sent later (because some peer lost
/// it, or this node set it aside) is verified and delivered again.
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
    public let seenTtlMs: UInt64
    private var seen: [Bytes32: UInt64] = [:]
    private var seenOrder: Deque<(id: Bytes32, timeMs: UInt64)> = []

    public init(domain: Domain, datagramBytesMax: Int, members: Set<PublicKey>, seenMax: Int = 200_000,
                seenTtlMs: UInt64 = 2_000) {
        self.domain = domain
        self.datagramBytesMax = datagramBytesMax
        self.members = members
        self.seenMax = seenMax
        self.seenTtlMs = seenTtlMs
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
    public mutating func admit(_ bytes: [UInt8], nowMs: UInt64 = 0) -> Outcome {
        let envelope: Envelope
        let message: Message
        switch precheck(bytes) {
        case .failure(let error): return .rejected(error.reason, detail: error.detail)
        case .success(let pair): (envelope, message) = pair
        }
        let id = envelope.id
        if let seenAt = seen[id], nowMs < seenAt + seenTtlMs { return .rejected(.duplicate, detail: "") }
        switch envelope.verify(domain: domain) {
        case .valid: break
        case .badSignature: return .rejected(.badSignature, detail: "\(envelope.kind) from \(envelope.sender)")
        case .wrongChain: return .rejected(.wrongChain, detail: "chain tag \(envelope.chainTag)")
        case .wrongFork: return .rejected(.wrongFork, detail: "fork \(envelope.forkId)")
        }
        remember(id, nowMs: nowMs)
        return .accepted(envelope, message)
    }

    /// Records `id` as seen at `nowMs`; the oldest entries go first when over `seenMax` or expired.
    public mutating func remember(_ id: Bytes32, nowMs: UInt64) {
        seen[id] = nowMs
        seenOrder.append((id, nowMs))
        while let oldest = seenOrder.first, seenOrder.count > seenMax || oldest.timeMs + seenTtlMs <= nowMs {
            seenOrder.removeFirst()
            if seen[oldest.id] == oldest.timeMs { seen[oldest.id] = nil }
        }
    }
}
