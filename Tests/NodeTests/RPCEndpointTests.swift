@testable import Node
import Foundation
import Ledger
import RPC
import Sodium
import Testing
import Wire

/// The rpc node's JSON-RPC router with each upstream fault mode: what a client gets.
@Suite struct RPCEndpointTests {
    static let validator = SigningKey(label: "rpc-endpoint/validator")
    static let alice = SigningKey(label: "rpc-endpoint/alice")

    /// The views of heights 1...n (empty blocks over a real ledger).
    static func views(_ n: UInt64) throws -> [ChainView] {
        let genesis = Genesis(chainId: "rpc-endpoint", protocolVersion: 1, genesisTimeMs: 0,
                              validators: [.init(name: "v1", publicKey: validator.publicKey, stake: 10)],
                              allocations: [.init(publicKey: alice.publicKey, balance: 500)])
        var ledger = try Ledger(genesis: genesis)
        var view = ChainView(chainName: "rpc-endpoint", domain: Domain(chainId: "rpc-endpoint"), clientVersion: "test")
        var out: [ChainView] = []
        for height in 1...n {
            let header = BlockHeader(protocolVersion: 1, height: height, timeMs: height * 1_000, proposer: validator.publicKey,
                                     previousBlockId: ledger.lastBlockId, stateRoot: ledger.stateRoot,
                                     txRoot: Block.txRoot([]), txCount: 0)
            let block = Block(header: header, txs: [])
            let result = ledger.execute(block)
            view.record(block, result, ledger: ledger)
            out.append(view)
        }
        return out
    }

    static func box(heights n: UInt64) throws -> RPCViewBox {
        let box = RPCViewBox()
        for view in try views(n) { box.publish(view) }
        return box
    }

    static func ask(_ box: RPCViewBox, _ method: String, _ params: [JSON] = []) -> (Int, JSON?, UInt64) {
        let body = JSONRPC.Request(id: .int(1), method: method, params: params).body.rendered
        let response = RPCEndpoint.route(method: .POST, body: body, box: box, inbox: Inbox(), queueDepth: AtomicCounter(),
                                         queueMax: 10, metrics: NodeMetrics())
        return (Int(response.status.code), JSON.parse(response.body), response.delayMs)
    }

    static func head(_ box: RPCViewBox) -> UInt64? {
        ask(box, "eth_blockNumber").1.flatMap { $0["result"]?.quantity }
    }

    @Test func frozenStaysAtItsHeadAndLagAnswersBlocksBehind() throws {
        let views = try Self.views(12)
        let box = RPCViewBox()
        for view in views.prefix(10) { box.publish(view) }
        #expect(Self.head(box) == 10)
        box.setFault(UpstreamFault(mode: "frozen"))
        for view in views.suffix(2) { box.publish(view) } // commits go on arriving
        #expect(Self.head(box) == 10, "a frozen node answers the head it had")
        box.setFault(UpstreamFault(mode: "lag", lagBlocks: 3))
        #expect(Self.head(box) == 9, "three views behind 12")
        box.setFault(.ok)
        #expect(Self.head(box) == 12)
    }

    @Test func errorStormsAnswerTheStatusOnTheirShare() throws {
        let box = try Self.box(heights: 3)
        box.setFault(UpstreamFault(mode: "errors", percent: 100, status: 429))
        #expect(Self.ask(box, "eth_chainId").0 == 429)
        box.setFault(UpstreamFault(mode: "errors", percent: 100, status: 200))
        let (status, json, _) = Self.ask(box, "eth_chainId")
        #expect(status == 200 && json?["error"]?["code"] == .int(JSONRPC.Code.internalError.rawValue))
        box.setFault(UpstreamFault(mode: "errors", percent: 30, status: 503))
        let failed = (0..<1_000).filter { _ in Self.ask(box, "eth_chainId").0 == 503 }.count
        #expect((200...400).contains(failed), "about 30% of 1,000: \(failed)")
    }

    @Test func latencyAndItsTailAreDelays() throws {
        let box = try Self.box(heights: 3)
        box.setFault(UpstreamFault(mode: "latency", ms: 5, tailPercent: 10, tailMs: 800))
        let delays = (0..<1_000).map { _ in Self.ask(box, "eth_chainId").2 }
        #expect(Set(delays) == [5, 805])
        let slow = delays.filter { $0 == 805 }.count
        #expect((50...150).contains(slow), "about 10% slow: \(slow)")
    }

    @Test func wrongAnswersChangeStateAndHashesButNotTheHead() throws {
        let box = try Self.box(heights: 4)
        let address = JSON.string(Address(Self.alice.publicKey).description)
        let honestBlock = Self.ask(box, "eth_getBlockByNumber", [.string("0x2"), .bool(false)]).1?["result"]?["hash"]
        #expect(Self.ask(box, "eth_getBalance", [address]).1?["result"] == JSON.quantity(500))
        box.setFault(UpstreamFault(mode: "wrong", percent: 100))
        #expect(Self.ask(box, "eth_getBalance", [address]).1?["result"] == JSON.quantity(1_001))
        let lie = Self.ask(box, "eth_getBlockByNumber", [.string("0x2"), .bool(false)]).1?["result"]?["hash"]
        #expect(lie != nil && lie != honestBlock)
        #expect(Self.head(box) == 4)
    }

    @Test func aFullQueueRefusesTransactionsInsteadOfQueueingThem() throws {
        let box = try Self.box(heights: 2)
        let tx = Envelope(kind: .transfer, payload: Transfer(to: Self.validator.publicKey, amount: 1, fee: 1, nonce: 0).encoded,
                          domain: Domain(chainId: "rpc-endpoint"), key: Self.alice)
        let body = JSONRPC.Request(id: .int(1), method: "eth_sendRawTransaction", params: [.string("0x" + Hex.encode(tx.bytes))])
            .body.rendered
        let depth = AtomicCounter()
        depth.set(10)
        let full = RPCEndpoint.route(method: .POST, body: body, box: box, inbox: Inbox(), queueDepth: depth, queueMax: 10,
                                     metrics: NodeMetrics())
        #expect(JSON.parse(full.body)?["error"]?["code"] == .int(JSONRPC.Code.limitExceeded.rawValue))
        depth.set(0)
        let inbox = Inbox()
        let taken = RPCEndpoint.route(method: .POST, body: body, box: box, inbox: inbox, queueDepth: depth, queueMax: 10,
                                      metrics: NodeMetrics())
        #expect(JSON.parse(taken.body)?["result"] == .string("0x" + tx.id.hex))
        #expect(depth.value == 1)
        #expect(inbox.counts.bulk == 1)
    }
}
