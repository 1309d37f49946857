import Dispatch
import Wire

/// The signature checks of one read burst, spread over `workers` threads. A burst of a few datagrams
/// (or one worker) is checked on the calling thread: a hand-off costs more than it saves there.
public enum SignatureChecks {
    /// Below this many checks in a burst, the calling thread does them all.
    static let parallelMin = 4

    public static func run(_ pending: [Ingress.Pending], workers: Int) -> [Envelope.VerifyResult] {
        let workers = min(workers, pending.count)
        guard workers > 1, pending.count >= parallelMin else { return pending.map { $0.check() } }
        var results = [Envelope.VerifyResult](repeating: .badSignature, count: pending.count)
        results.withUnsafeMutableBufferPointer { buffer in
            let out = ResultSlots(buffer: buffer)
            // Each worker writes only its own stride of slots.
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                for index in stride(from: worker, to: pending.count, by: workers) {
                    out.buffer[index] = pending[index].check()
                }
            }
        }
        return results
    }

    private struct ResultSlots: @unchecked Sendable {
        let buffer: UnsafeMutableBufferPointer<Envelope.VerifyResult>
    }
}
