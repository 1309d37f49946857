/// Prometheus alert rules for the outages Faultline reproduces, over the nodes' `/metrics`. Windows are
/// seconds, not the minutes a public chain's rules use: a local cluster makes a block every few
/// milliseconds to a second (`faultline prometheus --rules FILE` writes them for your own Prometheus;
/// scale the windows to your block time). The tests check them with `promtool`.
public enum AlertRules {
    public static let yaml = """
    groups:
      - name: faultline
        rules:
          - alert: FaultlineFinalityStalled
            expr: max by (cluster) (faultline_height{role="validator"}) <= max by (cluster) (faultline_height{role="validator"} offset 3s)
            labels:
              severity: critical
            annotations:
              summary: "No validator of {{ $labels.cluster }} finalized a block for 3 s"
              description: "Finality halted: a partition or loss without a +2/3 side, too many validators down, a version split, or votes starved."
          - alert: FaultlineRoundClimbing
            expr: max by (cluster, node) (faultline_round{role="validator"}) >= 3
            for: 2s
            labels:
              severity: warning
            annotations:
              summary: "{{ $labels.node }} is in round {{ $value }} of one height"
              description: "Rounds fail one after another: proposals or votes do not reach +2/3 in time."
          - alert: FaultlineVotesDropped
            expr: sum by (cluster, node) (rate(faultline_votes_dropped_total{role="validator"}[5s])) > 0 or sum by (cluster, node) (rate(faultline_udp_receive_dropped_total{role="validator", carries=~"all|votes"}[5s])) > 0
            labels:
              severity: warning
            annotations:
              summary: "{{ $labels.node }} loses votes, or datagrams that carry them ({{ $value | humanize }}/s)"
              description: "Votes dropped from a full ingress queue or shed unchecked, or the kernel dropping datagrams on a socket that carries votes: spam starving consensus. With ingress lanes, drops on the transactions socket do not count."
          - alert: FaultlineStateRootDiverged
            expr: max by (cluster, node) (faultline_stopped) == 1 and on (cluster, node) max by (cluster, node) (faultline_state_mismatch_total) > 0
            labels:
              severity: critical
            annotations:
              summary: "{{ $labels.node }} computed another state root than the chain and stopped"
              description: "Nodes disagree on the state after a block: mixed rules versions or a non-deterministic execution."
          - alert: FaultlineNodeStopped
            expr: max by (cluster, node) (faultline_stopped) == 1
            labels:
              severity: critical
            annotations:
              summary: "{{ $labels.node }} stopped deciding (state root mismatch or an upgrade it lacks)"
          - alert: FaultlineDisputeOpen
            expr: max by (cluster) (faultline_dispute_games_open) > 0
            labels:
              severity: warning
            annotations:
              summary: "A state root posted to L1 is disputed on {{ $labels.cluster }}"
          - alert: FaultlineMempoolGrowing
            expr: min_over_time(faultline_mempool_txs[3s]) > 1000 and deriv(faultline_mempool_txs[3s]) > 0
            labels:
              severity: warning
            annotations:
              summary: "{{ $labels.node }}'s mempool grows past 1,000 transactions ({{ $value | humanize }} waiting)"
          - alert: FaultlineL2QueueGrowing
            expr: min_over_time(faultline_l2_queue_txs[3s]) > 1000 and deriv(faultline_l2_queue_txs[3s]) > 0
            labels:
              severity: warning
            annotations:
              summary: "{{ $labels.node }}'s L2 queue grows past 1,000 transactions ({{ $value | humanize }} waiting)"
              description: "The sequencer admits more than it includes: overload without admission control."
          - alert: FaultlineRPCUpstreamExcluded
            expr: faultline_gateway_upstream_in_use == 0
            for: 2s
            labels:
              severity: warning
            annotations:
              summary: "Gateway {{ $labels.node }} stopped using upstream {{ $labels.upstream }}"
          - alert: FaultlineGatewayErrors
            expr: sum by (cluster, node) (rate(faultline_gateway_policy_total{counter="errors"}[10s])) > 0
            labels:
              severity: warning
            annotations:
              summary: "Gateway {{ $labels.node }} answers clients with errors ({{ $value | humanize }}/s)"
          - alert: FaultlineNodeDown
            expr: up{job="faultline"} == 0
            for: 2s
            labels:
              severity: warning
            annotations:
              summary: "{{ $labels.node }} ({{ $labels.role }}) does not answer scrapes"

    """
}

extension AlertRules {
    /// The alert names, in the file's order.
    public static var names: [String] {
        yaml.split(separator: "\n").compactMap { line in
            let text = line.trimmingCharacters(in: .whitespaces)
            return text.hasPrefix("- alert: ") ? String(text.dropFirst("- alert: ".count)) : nil
        }
    }
}
