import Basics
import Ledger
import Sodium
import Wire

extension Replica {
    /// One line of a node's event log (`events.jsonl`): the analysis reads these, from real nodes and
    /// simulated ones alike, so both engines write the replica's events from here.
    public struct Event: Sendable {
        public var name: String
        public var fields: [(String, JSONValue)]

        public init(_ name: String, _ fields: [(String, JSONValue)]) {
            self.name = name
            self.fields = fields
        }

        /// A (re)start: the node's height, binary, stake and what it recovered from its store.
        public static func start(height: UInt64, round: UInt32, version: String, binary: Binary, stake: UInt64,
                                 stateRoot: Bytes32, discardedTailBytes: UInt64,
                                 lastSigned: Tendermint.SignState?, consensus: BFT.ProtocolName) -> Event {
            Event("start", [
                ("consensus", .string(consensus.rawValue)),
                ("height", .uint(height)), ("round", .uint(UInt64(round))), ("version", .string(version)),
                ("protocolVersion", .uint(UInt64(binary.protocolVersion))),
                ("rulesVersionMax", .uint(UInt64(binary.version))), ("rulesVersionMin", .uint(UInt64(binary.versionMin))),
                ("forkId", .uint(UInt64(binary.forkId))), ("stake", .uint(stake)), ("stateRoot", .string(stateRoot.hex)),
                ("discardedTailBytes", .uint(discardedTailBytes)),
                ("lastSigned", lastSigned.map { .string("\($0.height)/\($0.round)/\($0.step)") } ?? .string("none")),
            ])
        }

        /// A block committed (by consensus or sync) and executed under `rules`.
        public static func commit(_ committed: CommittedBlock, result: Ledger.BlockResult, source: String,
                                  proposer: String, rules: UInt16) -> Event {
            let block = committed.block
            return Event("commit", [
                ("height", .uint(block.header.height)), ("round", .uint(UInt64(committed.commit.round))),
                ("hash", .string(committed.commit.blockId.hex)), ("stateRoot", .string(result.stateRoot.hex)),
                ("txs", .uint(UInt64(block.txs.count))), ("failedTxs", .uint(UInt64(result.failed))),
                ("signers", .array(committed.commit.signatures.map { .uint(UInt64($0.validator)) })),
                ("source", .string(source)), ("proposer", .string(proposer)),
                ("blockTimeMs", .uint(block.header.timeMs)), ("rules", .uint(UInt64(rules))),
                ("txIds", .array(block.txs.map { .string($0.id.short) })),
            ])
        }

        /// Every consensus signature a validator makes (analysis proves from these that no
        /// height/round/step was signed for two values).
        public static func signed(_ kind: MessageKind, height: UInt64, round: UInt32, value: Bytes32?,
                                  validator: String) -> Event {
            Event("signed", [
                ("height", .uint(height)), ("round", .uint(UInt64(round))), ("kind", .string(kind.description)),
                ("value", .string(value?.hex ?? "nil")), ("validator", .string(validator)),
            ])
        }

        public static func round(height: UInt64, round: UInt32) -> Event {
            Event("round", [("height", .uint(height)), ("round", .uint(UInt64(round)))])
        }

        /// The vote signed before a crash, sent again after the restart.
        public static func voteRestored(_ vote: Vote, kind: MessageKind) -> Event {
            Event("vote_restored", [
                ("height", .uint(vote.height)), ("round", .uint(UInt64(vote.round))), ("kind", .string(kind.description)),
            ])
        }

        /// An equivocation this node detected (and reports as an evidence transaction).
        public static func evidence(_ evidence: DuplicateVoteEvidence, offender: String) -> Event {
            let key = evidence.key
            return Event("evidence", [
                ("offender", .string(offender)), ("height", .uint(key.height)), ("round", .uint(UInt64(key.round))),
                ("vote", .string(key.kind.description)),
                ("blocks", .array([evidence.first.blockId, evidence.second.blockId].map { .string($0?.short ?? "nil") })),
            ])
        }

        /// An offence a committed block recorded.
        public static func evidenceCommitted(_ evidence: DuplicateVoteEvidence, offender: String, block: UInt64,
                                             reporter: String) -> Event {
            Event("evidence_committed", [
                ("offender", .string(offender)), ("height", .uint(evidence.key.height)),
                ("round", .uint(UInt64(evidence.key.round))), ("vote", .string(evidence.kind.description)),
                ("block", .uint(block)), ("reporter", .string(reporter)),
            ])
        }

        public static func invalidProposal(_ key: ProposalKey, problem: String) -> Event {
            Event("invalid_proposal", [
                ("height", .uint(key.height)), ("round", .uint(UInt64(key.round))), ("reason", .string(problem)),
            ])
        }

        public static func byzantine(_ modes: [ByzantineMode]) -> Event {
            Event("byzantine", [("modes", .array(modes.map { .string($0.rawValue) }))])
        }

        public static func refusedStart(height: UInt64, reason: String) -> Event {
            Event("refused_start", [("height", .uint(height)), ("reason", .string(reason))])
        }

        /// The last stored block was executed again under other rules at a start (`reason` nil), or the chain
        /// built on its first execution after all.
        public static func reexecuted(height: UInt64, from: UInt16, to: UInt16, stateRoot: Bytes32,
                                      reason: String? = nil) -> Event {
            Event("reexecuted", [
                ("height", .uint(height)), ("from", .uint(UInt64(from))), ("to", .uint(UInt64(to))),
                ("stateRoot", .string(stateRoot.hex)),
            ] + (reason.map { [("reason", JSONValue.string($0))] } ?? []))
        }

        public static func handshakeRefused(peer: String, reason: String) -> Event {
            Event("handshake_refused", [("peer", .string(peer)), ("reason", .string(reason))])
        }

        public static func handshakeAccepted(peer: String) -> Event {
            Event("handshake_accepted", [("peer", .string(peer))])
        }

        /// Votes-only mode switched on or off (`Replica.Instance.updateVotesOnly`).
        public static func votesOnly(_ on: Bool) -> Event {
            Event("votes_only", [("on", .bool(on))])
        }

        /// Once a second: how long the votes that reached consensus in it waited at this node's ingress
        /// (`delaysMs` sorted), and the datagrams its receive buffers dropped so far, by lane ("" one port,
        /// "user", "vote"). The node adds what only a process has (memory, timer lateness, queue lengths).
        public static func sample(voteDelaysMs delays: [UInt64], kernelDrops: [(lane: String, count: UInt64)],
                                  extra: [(String, JSONValue)] = []) -> Event {
            Event("sample", extra + [
                ("votes", .uint(UInt64(delays.count))), ("voteDelayP50Ms", .uint(delays.sampledPercentile(0.5))),
                ("voteDelayP99Ms", .uint(delays.sampledPercentile(0.99))), ("voteDelayMaxMs", .uint(delays.last ?? 0)),
            ] + kernelDrops.map { ((($0.lane.isEmpty ? "kernel" : "kernel_" + $0.lane) + "Drops"), .uint($0.count)) })
        }

        /// Cumulative counts by reason (rejects `reject_…`, misbehaviour sent `byzantine_sent_…`, and
        /// whatever else the shell counts), written when they change.
        /// Consensus messages received by kind and signatures checked, cumulative since the (re)start.
        public static func traffic(received: [(String, Int)], signaturesChecked: Int) -> Event {
            Event("traffic", [("received", .object(received.map { ($0.0, .uint(UInt64($0.1))) })),
                              ("signaturesChecked", .uint(UInt64(signaturesChecked)))])
        }

        public static func drops(_ counts: [(String, Int)]) -> Event {
            Event("drops", [("total", .object(counts.map { ($0.0, .uint(UInt64($0.1))) }))])
        }
    }

    /// Peers' consensus input refused, by reason, the core's and the shell's together, as `reject_…` counts
    /// (only those above zero).
    public static func rejectCounts(core: Tendermint.Metrics, invalidProposals: Int, conflictingProposals: Int,
                                    shell: [String: Int]) -> [(String, Int)] {
        var shell = shell
        if conflictingProposals > 0 { shell["conflicting_proposal", default: 0] += conflictingProposals }
        let all: [(String, Int)] = [
            ("stale_height", core.staleHeight), ("future_height", core.futureHeightDropped),
            ("round_too_far", core.roundTooFarAhead), ("wrong_proposer", core.wrongProposer),
            ("conflicting_vote", core.conflictingVote), ("unknown_validator", core.unknownValidator),
            ("invalid_proposal", invalidProposals),
        ] + shell.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        return all.filter { $0.1 > 0 }.map { ("reject_" + $0.0, $0.1) }
    }
}
