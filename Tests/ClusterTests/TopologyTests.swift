@testable import Formats
import Foundation
import Ledger
import Testing
@testable import Cluster

@Suite struct TopologyTests {
    static let valid = """
        [cluster]
        name = "t"
        chain_id = "test-chain"

        [timing]
        timeout_commit_ms = 5

        [[node]]
        name = "a"
        stake = 3
        labels = { region = "x" }

        [[node]]
        name = "b"
        """

    @Test func parsesAValidFile() throws {
        let topology = try Topology.parse(Self.valid, path: "t.toml")
        #expect(topology.chainId == "test-chain")
        #expect(topology.nodes.map(\.name) == ["a", "b"])
        #expect(topology.nodes[0].stake == 3 && topology.nodes[1].stake == 10)
        #expect(topology.nodes[0].labels == ["region": "x"])
        #expect(topology.timing.timeoutCommitMs == 5)
    }

    @Test(arguments: [
        ("[cluster]\nname = 1\n[[node]]\nname = \"a\"", "cluster.name", "expected a string"),
        ("[cluster]\n[[node]]\nname = \"a\"\nstake = \"ten\"", "node[1].stake", "expected an integer"),
        ("[cluster]\n[[node]]\nname = \"a\"\nstake = 0", "node[1].stake", "out of range"),
        ("[cluster]\n[[node]]\nname = \"a\"\n[[node]]\nname = \"a\"", "node[2].name", "used by two nodes"),
        ("[cluster]\n[[node]]\nname = \"a\"\nrole = \"miner\"", "node[1].role", "not a role"),
        ("[cluster]\n[[node]]\nname = \"a\"\nsteak = 3", "node[1].steak", "unknown field"),
        ("[cluster]\nhost = \"10.0.0.1\"\n[[node]]\nname = \"a\"", "cluster.host", "loopback"),
        ("[cluster]\n[timing]\ntimeout_propose_ms = 0\n[[node]]\nname = \"a\"", "timing.timeout_propose_ms", "out of range"),
        ("[[node]]\nname = \"a\"", "cluster", "is required"),
        ("[cluster]", "node", "at least one"),
        ("[cluster]\n[[node]]\nname = \"a b\"", "node[1].name", "letters, digits"),
        ("[cluster\nname = \"x\"", "line 1", "TOML syntax error"),
        // FuzzFiles: an empty key made an error with a blank field ("fuzz.toml: : unknown field").
        ("\"\" = 0\n[cluster]\n[[node]]\nname = \"a\"", "\"\"", "unknown field"),
        ("[cluster]\n\"a b\" = 1\n[[node]]\nname = \"a\"", "cluster.\"a b\"", "unknown field"),
        ("[cluster]\n[[node]]\nname = \"a\"\nversion = 7", "node[1].version", "out of range"),
        ("[cluster]\n[[node]]\nname = \"a\"\nversion = 1\nversion_min = 2", "node[1].version_min", "above version 1"),
        ("[cluster]\nhandshake = \"strict\"\n[[node]]\nname = \"a\"", "cluster.handshake", "expected \"fork\""),
        ("[cluster]\n[[node]]\nname = \"a\"\n[[upgrade]]\nname = \"x\"", "upgrade[1].height", "needs the height"),
        ("[cluster]\n[[node]]\nname = \"a\"\n[[upgrade]]\nname = \"x\"\nheight = 9\nversion = 1", "upgrade[1].version",
         "out of range"),
        ("[cluster]\n[[node]]\nname = \"a\"\n[[upgrade]]\nname = \"x\"\nheight = 9\n[[upgrade]]\nname = \"y\"\nheight = 5",
         "upgrade", "height 5 must be above 9"),
        ("[cluster]\n[[node]]\nname = \"a\"\n[[node]]\nname = \"r\"\nrole = \"replica\"", "node", "needs a node with role"),
        ("[cluster]\n[[node]]\nname = \"a\"\n[[node]]\nname = \"s\"\nrole = \"sequencer\"\n[[node]]\nname = \"t\"\nrole = \"sequencer\"",
         "node", "one sequencer at most"),
        ("[cluster]\n[rollup]\nblock_txs_max = 5\n[[node]]\nname = \"a\"", "rollup", "needs a node with role"),
        ("[cluster]\n[rollup]\nbacklog_bytes_max = 5000\n[[node]]\nname = \"a\"\n[[node]]\nname = \"s\"\nrole = \"sequencer\"",
         "rollup.backlog_intake_per_s", "must be above 0"),
        ("[cluster]\n[load]\nlayer = \"l2\"\n[[node]]\nname = \"a\"", "load.layer", "needs a node"),
        ("[cluster]\n[rollup]\nqueue_tx_max = 5\n[[node]]\nname = \"a\"\n[[node]]\nname = \"s\"\nrole = \"sequencer\"",
         "rollup.queue_tx_max", "unknown field"),
        ("[cluster]\n[[node]]\nname = \"a\"\n[[node]]\nname = \"b\"\ntwin_of = \"z\"", "node[2].twin_of",
         "'z' is not a validator"),
        ("[cluster]\n[[node]]\nname = \"a\"\n[[node]]\nname = \"b\"\ntwin_of = \"a\"\n[[node]]\nname = \"c\"\ntwin_of = \"b\"",
         "node[3].twin_of", "'b' is not a validator"),
        ("[cluster]\n[[node]]\nname = \"a\"\n[[node]]\nname = \"r\"\nrole = \"rpc\"\ntwin_of = \"a\"", "node[2].twin_of",
         "only a validator"),
    ])
    func errorsNameFileFieldAndProblem(text: String, field: String, problem: String) {
        do {
            _ = try Topology.parse(text, path: "bad.toml")
            Issue.record("accepted a malformed topology: \(text)")
        } catch {
            #expect(error.file == "bad.toml")
            #expect(error.field.hasPrefix(field), "field was '\(error.field)'")
            #expect(error.problem.contains(problem), "problem was '\(error.problem)'")
        }
    }

    @Test func aRollupTopologyFeedsEveryReplicaAndFundsTheAirdrop() throws {
        let text = "[cluster]\n[rollup]\nqueue_txs_max = 1024\nairdrop_claims = 10\nairdrop_amount = 7\n"
            + "[[node]]\nname = \"v\"\n[[node]]\nname = \"s\"\nrole = \"sequencer\"\n"
            + "[[node]]\nname = \"r1\"\nrole = \"replica\"\n[[node]]\nname = \"r2\"\nrole = \"replica\""
        let topology = try Topology.parse(text, path: "rollup.toml")
        #expect(topology.validators.map(\.name) == ["v"])
        #expect(topology.rollup?.settings.queueTxsMax == 1024 && topology.rollup?.settings.feedPeers == ["r1", "r2"])
        let genesis = try #require(ClusterSetup.rollupGenesis(topology, seed: 1))
        let pool = ClusterSetup.airdropPoolKey(chainId: topology.chainId, seed: 1).publicKey.hex
        #expect(genesis.airdropAmount == 7 && genesis.l2Allocations.first { $0.publicKey == pool }?.balance == 70)
        #expect(genesis.sequencer == ClusterSetup.nodeKey(chainId: topology.chainId, seed: 1, name: "s").publicKey.hex)
    }

    @Test func versionsForkIdsAndUpgradePlans() throws {
        let topology = try Topology.parse("""
            [cluster]
            handshake = "rules"
            [[node]]
            name = "a"
            [[node]]
            name = "b"
            version = 2
            fork_id = 4
            [[upgrade]]
            name = "burn"
            height = 50
            """, path: "t.toml")
        #expect(topology.nodes.map(\.version) == [1, 2] && topology.nodes.map(\.forkId) == [0, 4])
        #expect(topology.upgrades == [UpgradePlan(name: "burn", height: 50, version: 2)])
        #expect(topology.handshakeChecksRules)
    }

    @Test func validatorsShorthandMakesEqualValidators() throws {
        let topology = try Topology.parse("[cluster]\nname = \"big\"\nvalidators = 100\n", path: "big.toml")
        #expect(topology.validators.count == 100)
        #expect(topology.nodes.first?.name == "v1" && topology.nodes.last?.name == "v100")
        #expect(Set(topology.nodes.map(\.stake)) == [10])
        let both = "[cluster]\nvalidators = 3\n[[node]]\nname = \"a\"\n"
        #expect(throws: TopologyError(file: "both.toml", field: "cluster.validators",
                                      problem: "give either validators = N or [[node]] tables, not both")) {
            try Topology.parse(both, path: "both.toml")
        }
        #expect(throws: TopologyError.self) { try Topology.parse("[cluster]\nvalidators = 201\n", path: "x.toml") }
    }

    @Test func missingFileIsNamed() {
        #expect(throws: TopologyError(file: "/nonexistent.toml", field: "(file)",
                                      problem: "cannot be read (missing or not a file)")) {
            try Topology.load(path: "/nonexistent.toml")
        }
    }

    @Test func libraryTopologiesParse() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Topologies")
        let files = try FileManager.default.contentsOfDirectory(atPath: root.path).filter { $0.hasSuffix(".toml") }
        #expect(!files.isEmpty)
        for file in files {
            _ = try Topology.load(path: root.appendingPathComponent(file).path)
        }
    }
}

@Suite struct RunFolderTests {
    @Test func createsKeysGenesisConfigsAndPrivateToken() throws {
        let topology = try Topology.parse(TopologyTests.valid, path: "t.toml")
        let root = NSTemporaryDirectory() + "faultline-runfolder-\(getpid())-\(UInt32.random(in: 0...UInt32.max))/runs"
        defer { try? FileManager.default.removeItem(atPath: (root as NSString).deletingLastPathComponent) }
        let (dir, manifest) = try RunFolder.create(topology: topology, runsRoot: root, seed: 7)
        #expect(manifest.nodes.count == 2)
        #expect(Set(manifest.nodes.map(\.gossipPort)).count == 2)
        let tokenMode = try FileManager.default.attributesOfItem(atPath: dir + "/token")[.posixPermissions] as? Int
        #expect(tokenMode == 0o600)
        let keyMode = try FileManager.default.attributesOfItem(atPath: dir + "/nodes/a/key")[.posixPermissions] as? Int
        #expect(keyMode == 0o600)
        // Same seed, same keys.
        #expect(manifest.nodes[0].publicKey
                == ClusterSetup.nodeKey(chainId: "test-chain", seed: 7, name: "a").publicKey.hex)
        let reloaded = try RunFolder.load(dir)
        #expect(reloaded.nodes.map(\.name) == ["a", "b"])
    }

    /// Twins: the twin signs with its original's key and is not a second validator in genesis.
    @Test func aTwinSharesItsOriginalsKeyAndIsNotInGenesis() throws {
        let topology = try Topology.parse("""
            [cluster]
            name = "twins"
            [[node]]
            name = "a"
            [[node]]
            name = "b"
            [[node]]
            name = "a2"
            twin_of = "a"
            """, path: "t.toml")
        #expect(topology.validators.map(\.name) == ["a", "b"])
        #expect(topology.nodes[2].keyName == "a")
        let root = NSTemporaryDirectory() + "faultline-twins-\(getpid())-\(UInt32.random(in: 0...UInt32.max))/runs"
        defer { try? FileManager.default.removeItem(atPath: (root as NSString).deletingLastPathComponent) }
        let (dir, manifest) = try RunFolder.create(topology: topology, runsRoot: root, seed: 7)
        #expect(manifest.nodes[2].publicKey == manifest.nodes[0].publicKey)
        #expect(manifest.nodes[1].publicKey != manifest.nodes[0].publicKey)
        #expect(try String(contentsOfFile: dir + "/nodes/a2/key", encoding: .utf8)
                == String(contentsOfFile: dir + "/nodes/a/key", encoding: .utf8))
        let genesis = try JSONDecoder().decode(Genesis.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/genesis.json")))
        #expect(genesis.validators.map(\.name) == ["a", "b"])
    }
}

@Suite struct LimitsParsingTests {
    /// Every [limits] field at once (a larger parse function once returned a corrupted value here).
    @Test func everyLimitIsRead() throws {
        let text = """
            [cluster]
            [limits]
            block_txs_max = 100
            block_bytes_max = 200000
            mempool_txs_max = 900
            datagram_payload_bytes_max = 1000
            ingress_queue_max = 500
            status_interval_ms = 50
            gossip_relay_fanout = 2
            ingress_mode = "lanes"
            user_verify_share = 0.25
            staked_share = 0.75
            vote_sender_per_s = 300
            votes_only_after_ms = 800
            [[node]]
            name = "a"
            """
        let limits = try Topology.parse(text, path: "l.toml").limits
        #expect(limits.blockTxsMax == 100 && limits.blockBytesMax == 200_000 && limits.mempoolTxsMax == 900)
        #expect(limits.datagramPayloadBytesMax == 1_000 && limits.ingressQueueMax == 500 && limits.statusIntervalMs == 50)
        #expect(limits.gossipRelayFanout == 2 && limits.lanes && limits.userVerifyShare == 0.25)
        #expect(limits.stakedShare == 0.75 && limits.voteSenderPerSecond == 300 && limits.votesOnlyAfterMs == 800)
        #expect(throws: TopologyError.self) {
            try Topology.parse(text.replacingOccurrences(of: "\"lanes\"", with: "\"fast\""), path: "l.toml")
        }
    }
}
