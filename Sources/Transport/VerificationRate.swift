import Sodium
import Wire
#if canImport(Glibc)
import Glibc
#endif

/// Envelope signatures this thread checks per second, with the call every node's ingress makes.
/// Used by a lanes node to size its user-transaction budget and by the scenario runner for reference.
public enum VerificationRate {
    public static func measure(seconds: Double) -> Double {
        measureWithShare(seconds: seconds).perSecond
    }

    /// Verifications per second of wall time, and the share of that time this thread was on a CPU (its CPU
    /// time ÷ wall time): 1 on an idle machine, about ½ with a CPU hog on every core. A load written as
    /// k × capacity scales with the share, so it means k × what the machine can give the run now.
    public static func measureWithShare(seconds: Double) -> (perSecond: Double, cpuShare: Double) {
        let domain = Domain(chainId: "verification-rate")
        let envelopes = workload(domain: domain)
        let clock = ContinuousClock()
        let start = clock.now
        let cpuStart = threadCPUSeconds()
        let limit = Duration.milliseconds(Int64(seconds * 1000))
        var count = 0
        var next = 0
        while clock.now - start < limit {
            for _ in 0..<64 {
                if envelopes[next].verify(domain: domain) == .valid { count += 1 }
                next = next + 1 == envelopes.count ? 0 : next + 1
            }
        }
        let elapsed = clock.now - start
        guard elapsed.seconds > 0 else { return (0, 1) }
        let share = cpuStart.flatMap { cpuStart in threadCPUSeconds().map { ($0 - cpuStart) / elapsed.seconds } }
        return (Double(count) / elapsed.seconds, min(max(share ?? 1, 0.05), 1))
    }

    /// Signers in the workload: each check is of a different signer and message, as a node's are. One
    /// envelope checked over and over runs 3–5% faster (the CPU's branch predictors learn the path of its
    /// variable-time arithmetic), and the bound came out that much above what the nodes could reach;
    /// 32 signers still ran 2% fast, 256 as fast as 8,192.
    public static let workloadSigners = 256

    /// `workloadSigners` transfers, each signed by its own key (deterministic: the same on every machine).
    public static func workload(domain: Domain) -> [Envelope] {
        (0..<workloadSigners).map { index in
            let key = SigningKey(label: "verification-rate-\(index)")
            let payload = Transfer(to: key.publicKey, amount: 1 + UInt64(index), fee: 1, nonce: UInt64(index)).encoded
            return Envelope(kind: .transfer, payload: payload, domain: domain, key: key)
        }
    }

    /// This thread's CPU time in seconds, where the platform has a per-thread clock.
    static func threadCPUSeconds() -> Double? {
        #if canImport(Glibc)
        var time = timespec()
        guard clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time) == 0 else { return nil }
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
        #else
        return nil
        #endif
    }
}

extension Duration {
    /// The duration in seconds, as a floating-point number (for rates and benchmark figures).
    public var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}

/// The cores this process may run on: its CPU affinity mask (`taskset -c 0` leaves one), not the machine's
/// count (`ProcessInfo.activeProcessorCount` still says two there, so a capacity measured per core and
/// multiplied by it, and with it every `k ×` load, came out twice what one pinned core can take).
public enum UsableCores {
    public static var count: Int {
        #if canImport(Glibc)
        // `Cpus_allowed:` of /proc/self/status is the affinity mask in hex words ("ff" or "00000001,ffffffff").
        if let file = fopen("/proc/self/status", "r") {
            defer { fclose(file) }
            var line: UnsafeMutablePointer<CChar>?
            var capacity = 0
            defer { free(line) }
            while getline(&line, &capacity, file) > 0, let text = line.map({ String(cString: $0) }) {
                guard text.hasPrefix("Cpus_allowed:") else { continue }
                let bits = text.dropFirst("Cpus_allowed:".count).reduce(0) { count, character in
                    count + (character.hexDigitValue?.nonzeroBitCount ?? 0)
                }
                if bits > 0 { return bits }
            }
        }
        return max(Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))), 1)
        #else
        return 1
        #endif
    }
}
