import Formats
import Foundation
import Wire

extension Evaluator {
    /// The RPC metrics (Topologies/README.md, "RPC nodes and failover") for one client of `[rpc_load]`, over the
    /// requests sent in the window. Failover times need a `during:STEP` window (they are measured from the fault's
    /// start).
    func evaluateRPC(_ spec: ExpectationSpec, ranges: [ClosedRange<UInt64>]) -> (Double?, String)? {
        guard spec.metric.hasPrefix("rpc_") else { return nil }
        guard let rpc = analysis.rpc else { return (nil, "no RPC load in this run (is there an [rpc_load] table?)") }
        guard let client = spec.client, rpc.clients.contains(client) else {
            return (nil, "no client '\(spec.client ?? "")' in the RPC load (clients: \(rpc.clients.joined(separator: ", ")))")
        }
        let summary = rpc.summary(client, in: ranges)
        guard summary.requests > 0 else { return (nil, "\(client) sent no request in the window") }
        switch spec.metric {
        case "rpc_requests":
            return (Double(summary.requests), "\(summary.requests) requests")
        case "rpc_error_percent":
            return (summary.errorPercent, String(format: "%.2f%% (%d of %d)", summary.errorPercent, summary.errors,
                                                 summary.requests)
                    + (summary.topErrors.isEmpty ? "" : ": " + summary.topErrors.joined(separator: "; ")))
        case "rpc_stale_answers":
            return (Double(summary.staleAnswers), "\(summary.staleAnswers) eth_blockNumber answer(s) more than "
                    + "\(rpc.staleBlocks) blocks behind the chain")
        case "rpc_wrong_answers":
            return (Double(summary.wrongAnswers), "\(summary.wrongAnswers) block(s) answered with a hash the chain "
                    + "did not commit at that height")
        case "rpc_head_decreases":
            return (Double(summary.headDecreases), "\(summary.headDecreases) answer(s) below a head already seen")
        case "rpc_latency_p50_ms", "rpc_latency_p99_ms":
            let value = spec.metric == "rpc_latency_p50_ms" ? summary.latencyP50Ms : summary.latencyP99Ms
            return (value.map { Double($0) }, value.map { "\($0) ms over \(summary.requests - summary.errors) answers" }
                    ?? "no successful answer")
        case "rpc_amplification":
            return (summary.amplification, summary.amplification.map {
                String(format: "%.2f upstream requests per client request", $0)
            } ?? "no upstream counts")
        case "rpc_failover_ms", "rpc_first_success_ms":
            guard case .during(let id) = spec.window, let fault = windows.first(where: { $0.id == id }) else {
                return (nil, "\(spec.metric) is measured from a fault's start: use window = \"during:STEP\"")
            }
            let end = min(fault.endMs ?? endMs, endMs)
            let times = rpc.failover(client, faultStartMs: fault.startMs, endMs: end)
            if spec.metric == "rpc_first_success_ms" {
                return (times.firstSuccessMs.map { Double($0) }, times.firstSuccessMs.map { "\($0) ms" }
                        ?? "no request sent during \(id) succeeded")
            }
            return (times.ms99.map { Double($0) }, times.ms99.map { "\($0) ms until 99% of a second's requests succeeded" }
                    ?? "never 99% successful during \(id)")
        default:
            return (nil, "unknown metric")
        }
    }
}
