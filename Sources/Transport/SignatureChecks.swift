import Dispatch
import Synchronization
import Wire

/// The signature checks of one read burst, spread over `workers` threads. A burst of a few datagrams
/// (or one worker) is checked on the calling thread: a hand-off costs more than it saves there.
public enum SignatureChecks {
    /// Below this many checks in a burst, the calling thread does them all.
    static let parallelMin = 4
    /// Checks a worker takes at a time.
    static let claimSize = 4

    /// Workers take the next few checks as they finish the last (not a fixed share each): on a machine
    /// whose cores the node shares, a worker that loses its core would otherwise hold the whole burst —
    /// and the reading of the next one — until it gets the core back.
    public static func run(_ pending: [Ingress.Pending], workers: Int) -> [Envelope.VerifyResult] {
        let workers = min(workers, pending.count)
        guard workers > 1, pending.count >= parallelMin else { return pending.map { $0.check() } }
        var results = [Envelope.VerifyResult](repeating: .badSignature, count: pending.count)
        let next = Atomic<Int>(0)
        results.withUnsafeMutableBufferPointer { buffer in
            let out = ResultSlots(buffer: buffer)
            DispatchQueue.concurrentPerform(iterations: workers) { _ in
                while true {
                    let start = next.add(claimSize, ordering: .relaxed).oldValue
                    guard start < pending.count else { return }
                    // Each claim's slots are written by the one worker that claimed them.
                    for index in start..<min(start + claimSize, pending.count) { out.buffer[index] = pending[index].check() }
                }
            }
        }
        return results
    }

    private struct ResultSlots: @unchecked Sendable {
        let buffer: UnsafeMutableBufferPointer<Envelope.VerifyResult>
    }
}
