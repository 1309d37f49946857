import Consensus
import Foundation
import Ledger
import Sodium
import Testing
import Wire
@testable import Node

@Suite struct StoreTests {
    func tempPath(_ name: String) -> String {
        NSTemporaryDirectory() + "faultline-store-\(getpid())-\(UInt32.random(in: 0...UInt32.max))-\(name)"
    }

    func committed(_ height: UInt64, previous: Bytes32) -> CommittedBlock {
        let header = BlockHeader(protocolVersion: 1, height: height, timeMs: height, proposer: SigningKey(label: "p").publicKey,
                                 previousBlockId: previous, stateRoot: .zero, txRoot: Block.txRoot([]), txCount: 0)
        let block = Block(header: header, txs: [])
        return CommittedBlock(block: block, commit: CommitCertificate(height: height, round: 0, blockId: block.id,
                                                                      signatures: []))
    }

    @Test func blocksSurviveReopenAndATornTailIsCut() throws {
        let path = tempPath("blocks")
        defer { unlink(path) }
        var previous = Bytes32.zero
        do {
            let store = try BlockStore(path: path) { _, _ in }
            for height in 1...5 {
                let block = committed(UInt64(height), previous: previous)
                try store.append(block, rulesVersion: 1)
                previous = block.block.id
            }
        }
        // Simulate a crash in the middle of writing block 6: half a record at the end.
        let sixth = committed(6, previous: previous).encoded
        let handle = FileHandle(forWritingAtPath: path)!
        handle.seekToEndOfFile()
        handle.write(Data([0, 0, 0, UInt8(sixth.count)] + [UInt8](repeating: 7, count: 20)))
        handle.closeFile()
        var replayed: [UInt64] = []
        let reopened = try BlockStore(path: path) { block, _ in replayed.append(block.block.header.height) }
        #expect(replayed == [1, 2, 3, 4, 5])
        #expect(reopened.height == 5)
        #expect(reopened.discardedTailBytes == 24)
        // The store keeps working after the repair.
        try reopened.append(committed(6, previous: previous), rulesVersion: 1)
        #expect(try reopened.encodedBlock(at: 6) != nil)
    }

    @Test func corruptRecordStopsReplayThere() throws {
        let path = tempPath("corrupt")
        defer { unlink(path) }
        var previous = Bytes32.zero
        do {
            let store = try BlockStore(path: path) { _, _ in }
            for height in 1...3 {
                let block = committed(UInt64(height), previous: previous)
                try store.append(block, rulesVersion: 1)
                previous = block.block.id
            }
        }
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[bytes.count - 5] ^= 0xff // flip a byte inside block 3
        try bytes.write(to: URL(fileURLWithPath: path))
        let reopened = try BlockStore(path: path) { _, _ in }
        #expect(reopened.height == 2)
    }

    @Test func rulesVersionsAreKeptPerBlockAndTheTipCanBeRewritten() throws {
        let path = tempPath("rules")
        defer { unlink(path) }
        var previous = Bytes32.zero
        var blocks: [CommittedBlock] = []
        do {
            let store = try BlockStore(path: path) { _, _ in }
            for (height, rules) in [(1, 1), (2, 1), (3, 2)] as [(UInt64, UInt16)] {
                let block = committed(height, previous: previous)
                try store.append(block, rulesVersion: rules)
                blocks.append(block)
                previous = block.block.id
            }
            // A restart on another binary re-executed the tip under v1 rules.
            try store.rewriteLastRulesVersion(1)
            #expect(store.lastRulesVersion == 1)
        }
        var replayed: [(UInt64, UInt16)] = []
        let reopened = try BlockStore(path: path) { block, rules in replayed.append((block.block.header.height, rules)) }
        #expect(replayed.map(\.0) == [1, 2, 3])
        #expect(replayed.map(\.1) == [1, 1, 1])
        #expect(reopened.discardedTailBytes == 0)
        // What sync serves is the committed block alone, not the rules prefix.
        let served = try #require(try reopened.encodedBlock(at: 3))
        #expect(try CommittedBlock(decoding: served) == blocks[2])
    }

    @Test func signStateIsMonotonicKeepsTheSignedVoteAndSurvivesReopen() throws {
        let path = tempPath("sign")
        defer { unlink(path) }
        let vote = Vote(height: 4, round: 1, blockId: Blake2b.hash([4]))
        do {
            let store = try SignStateStore(path: path)
            #expect(store.state == nil)
            try store.record(.init(height: 3, round: 0, step: 1), kind: .prevote, payload: Vote(height: 3, round: 0, blockId: nil).encoded)
            try store.record(.init(height: 3, round: 0, step: 2), kind: .precommit, payload: Vote(height: 3, round: 0, blockId: nil).encoded)
            try store.record(.init(height: 4, round: 1, step: 2), kind: .precommit, payload: vote.encoded)
            #expect(throws: FileError.self) {
                try store.record(.init(height: 4, round: 1, step: 1), kind: .prevote, payload: vote.encoded)
            }
        }
        let reopened = try SignStateStore(path: path)
        #expect(reopened.state == Tendermint.SignState(height: 4, round: 1, step: 2))
        #expect(reopened.signed?.kind == MessageKind.precommit.rawValue)
        #expect(try Vote(decoding: reopened.signed!.payload) == vote)
        // A torn write to one slot leaves the other intact.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        for index in 0..<SignStateStore.slotBytes { bytes[index] = 0xAA }
        try bytes.write(to: URL(fileURLWithPath: path))
        let afterTear = try SignStateStore(path: path)
        #expect(afterTear.state != nil)
        #expect(afterTear.state! >= Tendermint.SignState(height: 3, round: 0, step: 2))
    }
}
