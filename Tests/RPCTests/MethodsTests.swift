import Ledger
import RPC
import Sodium
import Testing
import Wire

/// JSON-RPC framing and the methods over a real ledger: one committed block with a transfer that
/// applied and one that did not.
@Suite struct MethodsTests {
    static let alice = SigningKey(label: "rpc-test/alice")
    static let bob = SigningKey(label: "rpc-test/bob")
    static let validator = SigningKey(label: "rpc-test/validator")
    static let domain = Domain(chainId: "rpc-test")

    static func transfer(_ from: SigningKey, to: PublicKey, amount: UInt64, nonce: UInt64) -> Envelope {
        Envelope(kind: .transfer, payload: Transfer(to: to, amount: amount, fee: 1, nonce: nonce).encoded,
                 domain: domain, key: from)
    }

    static func view() throws -> (ChainView, good: Envelope, bad: Envelope) {
        let genesis = Genesis(chainId: "rpc-test", protocolVersion: 1, genesisTimeMs: 0,
                              validators: [.init(name: "v1", publicKey: validator.publicKey, stake: 10)],
                              allocations: [.init(publicKey: alice.publicKey, balance: 1_000)])
        var ledger = try Ledger(genesis: genesis)
        let good = transfer(alice, to: bob.publicKey, amount: 300, nonce: 0)
        let bad = transfer(bob, to: alice.publicKey, amount: 5, nonce: 0) // bob has nothing yet... and pays a fee
        let badFirst = [bad, good]
        let header = BlockHeader(protocolVersion: 1, height: 1, timeMs: 1_700_000_000_000, proposer: validator.publicKey,
                                 previousBlockId: ledger.lastBlockId, stateRoot: ledger.stateRoot,
                                 txRoot: Block.txRoot(badFirst), txCount: 2)
        let block = Block(header: header, txs: badFirst)
        let result = ledger.execute(block)
        var view = ChainView(chainName: "rpc-test", domain: domain, clientVersion: "faultline/test")
        view.record(block, result, ledger: ledger)
        return (view, good, bad)
    }

    static func call(_ method: String, _ params: [JSON], _ view: ChainView) -> Methods.Answer {
        Methods.handle(JSONRPC.Request(id: .int(1), method: method, params: params), view: view)
    }

    static func code(_ answer: Methods.Answer) -> Int64? {
        if case .failure(let failure) = answer { return failure.code }
        return nil
    }

    @Test(arguments: [
        ("not JSON", "{\"jsonrpc\": \"2.0\", ", JSONRPC.Code.parseError),
        ("binary garbage", "\u{01}\u{02}\u{ff}", JSONRPC.Code.parseError),
        ("empty batch", "[]", JSONRPC.Code.invalidRequest),
        ("batch over the limit", "[" + Array(repeating: "1", count: 101).joined(separator: ",") + "]", JSONRPC.Code.limitExceeded),
    ])
    func unusableBodiesGetOneError(_ name: String, _ body: String, _ code: JSONRPC.Code) {
        guard case .unusable(let failure) = JSONRPC.parse(Array(body.utf8)) else {
            Issue.record("\(name): expected one error for the whole body")
            return
        }
        #expect(failure.code == code.rawValue, "\(name)")
    }

    @Test(arguments: [
        ("a number", "7", JSONRPC.Code.invalidRequest),
        ("no jsonrpc member", "{\"id\":1,\"method\":\"eth_chainId\"}", JSONRPC.Code.invalidRequest),
        ("method not a string", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":5}", JSONRPC.Code.invalidRequest),
        ("params by name", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_chainId\",\"params\":{}}", JSONRPC.Code.invalidParams),
        ("id an object", "{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"eth_chainId\"}", JSONRPC.Code.invalidRequest),
    ])
    func malformedRequestsAreAnsweredWithTheirCode(_ name: String, _ body: String, _ code: JSONRPC.Code) {
        guard case .single(.invalid(_, let failure)) = JSONRPC.parse(Array(body.utf8)) else {
            Issue.record("\(name): expected an invalid single request")
            return
        }
        #expect(failure.code == code.rawValue, "\(name)")
    }

    @Test func aBatchIsParsedElementByElement() {
        let body = "[{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":\"eth_blockNumber\"}, 3, {\"jsonrpc\":\"2.0\",\"method\":\"x\"}]"
        guard case .batch(let items) = JSONRPC.parse(Array(body.utf8)) else {
            Issue.record("expected a batch")
            return
        }
        #expect(items.count == 3)
        #expect(items[0] == .request(JSONRPC.Request(id: .string("a"), method: "eth_blockNumber")))
        #expect(items[2] == .request(JSONRPC.Request(id: nil, method: "x")), "no id: a notification")
    }

    @Test func headBlocksAndAccountsReadAsEthereumShapes() throws {
        let (view, good, bad) = try Self.view()
        #expect(Self.call("eth_blockNumber", [], view) == .result(.string("0x1")))
        #expect(Self.call("eth_chainId", [], view) == .result(JSON.quantity(ChainView.numericChainId("rpc-test"))))
        guard case .result(let block) = Self.call("eth_getBlockByNumber", [.string("latest"), .bool(false)], view) else {
            Issue.record("no block")
            return
        }
        #expect(block["number"] == .string("0x1"))
        #expect(block["transactions"] == .array([.string("0x" + bad.id.hex), .string("0x" + good.id.hex)]))
        #expect(block["timestamp"] == JSON.quantity(1_700_000_000))
        let hash = block["hash"]!
        guard case .result(let same) = Self.call("eth_getBlockByHash", [hash, .bool(true)], view) else {
            Issue.record("no block by hash")
            return
        }
        #expect(same["transactions"]?.array?[1]["value"] == JSON.quantity(300))
        #expect(Self.call("eth_getBlockByNumber", [.string("0x9"), .bool(false)], view) == .result(.null))
        let aliceAddress = JSON.string(Address(Self.alice.publicKey).description)
        #expect(Self.call("eth_getBalance", [aliceAddress, .string("latest")], view) == .result(JSON.quantity(699)))
        #expect(Self.call("eth_getTransactionCount", [aliceAddress], view) == .result(JSON.quantity(1)))
        let unknown = JSON.string("0x" + String(repeating: "ab", count: 20))
        #expect(Self.call("eth_getBalance", [unknown], view) == .result(JSON.quantity(0)))
    }

    @Test func receiptsSayWhetherTheTransactionApplied() throws {
        let (view, good, bad) = try Self.view()
        guard case .result(let applied) = Self.call("eth_getTransactionReceipt", [.string("0x" + good.id.hex)], view),
              case .result(let skipped) = Self.call("eth_getTransactionReceipt", [.string("0x" + bad.id.hex)], view) else {
            Issue.record("no receipts")
            return
        }
        #expect(applied["status"] == .string("0x1"))
        #expect(skipped["status"] == .string("0x0"))
        #expect(applied["transactionIndex"] == .string("0x1"))
        let missing = JSON.string("0x" + String(repeating: "0", count: 64))
        #expect(Self.call("eth_getTransactionReceipt", [missing], view) == .result(.null))
    }

    @Test(arguments: [
        ("unknown method", "eth_call", [JSON](), JSONRPC.Code.methodNotFound),
        ("short address", "eth_getBalance", [JSON.string("0x1234")], JSONRPC.Code.invalidParams),
        ("old state", "eth_getBalance", [JSON.string("0x" + String(repeating: "ab", count: 20)), .string("0x0")],
         JSONRPC.Code.invalidParams),
        ("bad tag", "eth_getBlockByNumber", [JSON.string("newest")], JSONRPC.Code.invalidParams),
        ("full flag not bool", "eth_getBlockByNumber", [JSON.string("latest"), .int(1)], JSONRPC.Code.invalidParams),
        ("raw tx not hex", "eth_sendRawTransaction", [JSON.string("0xzz")], JSONRPC.Code.invalidParams),
        ("raw tx garbage", "eth_sendRawTransaction", [JSON.string("0x0102030405")], JSONRPC.Code.invalidParams),
    ])
    func badParamsNameWhatWasWrong(_ name: String, _ method: String, _ params: [JSON], _ code: JSONRPC.Code) throws {
        let (view, _, _) = try Self.view()
        #expect(Self.code(Self.call(method, params, view)) == code.rawValue, "\(name)")
    }

    @Test func aSignedTransferIsSubmittedAndAForgedOneRefused() throws {
        let (view, _, _) = try Self.view()
        let tx = Self.transfer(Self.alice, to: Self.bob.publicKey, amount: 1, nonce: 1)
        #expect(Self.call("eth_sendRawTransaction", [.string("0x" + Hex.encode(tx.bytes))], view) == .submit(tx))
        var forged = tx.bytes
        forged[forged.count - 1] ^= 1 // a payload byte: the signature no longer matches
        #expect(Self.code(Self.call("eth_sendRawTransaction", [.string("0x" + Hex.encode(forged))], view))
                == JSONRPC.Code.transactionRejected.rawValue)
        let otherChain = Envelope(kind: .transfer, payload: Transfer(to: Self.bob.publicKey, amount: 1, fee: 1, nonce: 1).encoded,
                                  domain: Domain(chainId: "elsewhere"), key: Self.alice)
        #expect(Self.code(Self.call("eth_sendRawTransaction", [.string("0x" + Hex.encode(otherChain.bytes))], view))
                == JSONRPC.Code.transactionRejected.rawValue)
    }
}
