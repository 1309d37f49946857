import Formats
import Testing

/// The consensus line of `faultline status`: one protocol, or which nodes run which when they differ.
@Suite struct NodeStatusTests {
    static func status(_ name: String, consensus: String?) -> NodeStatus {
        var status = NodeStatus(name: name, role: "validator", version: "0", protocolVersion: 1, height: 1, consensusHeight: 2,
                                round: 0, step: "propose", peers: 3, peersTotal: 3, mempoolTxs: 0, ingressQueue: 0,
                                ingressQueueMax: 0, lastCommitTimeMs: 0, lastBlockId: "", stateRoot: "", txsCommitted: 0,
                                startedAtMs: 0, conflictingVotes: 0, invalidProposals: 0, proposer: "v1", linkFaults: 0,
                                shapedDrops: 0, clockSkewMs: 0)
        status.consensus = consensus
        return status
    }

    @Test func oneProtocolOrWhoRunsWhich() {
        let same = ["v1", "v2", "v3"].map { ($0, Optional(Self.status($0, consensus: "hotstuff2"))) }
        #expect(NodeStatus.consensusLine(same + [("gw", nil)]) == "consensus: hotstuff2")
        let mixed = [("v1", Optional(Self.status("v1", consensus: "tendermint"))),
                     ("v2", Optional(Self.status("v2", consensus: "tendermint"))),
                     ("v4", Optional(Self.status("v4", consensus: "hotstuff2"))),
                     ("gw", Optional(Self.status("gw", consensus: nil)))]
        #expect(NodeStatus.consensusLine(mixed) == "consensus protocols differ: hotstuff2 (v4), tendermint (v1, v2)")
        #expect(NodeStatus.consensusLine([("gw", Optional(Self.status("gw", consensus: nil))), ("x", nil)]) == nil)
    }
}
