// libFuzzer target: the bodies a JSON-RPC client can send to an rpc node or the gateway. Any body
// gets an answer (never a trap): a single request or notification, a batch of answers, or one error;
// every answer is a JSON-RPC 2.0 object that echoes the request's id. The methods run over a chain
// view holding a real block, so the handlers' parameter checks are exercised too.
import Foundation
import Ledger
import RPC
import Sodium
import Wire

let domain = Domain(chainId: "fuzz-rpc")
let alice = SigningKey(label: "fuzz-rpc/alice")
let validator = SigningKey(label: "fuzz-rpc/validator")
let good = Envelope(kind: .transfer, payload: Transfer(to: validator.publicKey, amount: 300, fee: 1, nonce: 0).encoded,
                    domain: domain, key: alice)

let view: ChainView = {
    let genesis = Genesis(chainId: "fuzz-rpc", protocolVersion: 1, genesisTimeMs: 0,
                          validators: [.init(name: "v1", publicKey: validator.publicKey, stake: 10)],
                          allocations: [.init(publicKey: alice.publicKey, balance: 1_000)])
    var ledger = try! Ledger(genesis: genesis)
    let header = BlockHeader(protocolVersion: 1, height: 1, timeMs: 1_700_000_000_000, proposer: validator.publicKey,
                             previousBlockId: ledger.lastBlockId, stateRoot: ledger.stateRoot,
                             txRoot: Block.txRoot([good]), txCount: 1)
    let block = Block(header: header, txs: [good])
    let result = ledger.execute(block)
    var view = ChainView(chainName: "fuzz-rpc", domain: domain, clientVersion: "faultline/fuzz")
    view.record(block, result, ledger: ledger)
    return view
}()

/// The answer a node gives to one element, as JSON (nil for a notification, which gets none).
func answer(_ item: JSONRPC.Item) -> JSON? {
    switch item {
    case .invalid(let id, let failure):
        return JSONRPC.error(id: id, failure)
    case .request(let request):
        let reply: JSON
        switch Methods.handle(request, view: view) {
        case .result(let value): reply = JSONRPC.result(id: request.id ?? .null, value)
        case .failure(let failure): reply = JSONRPC.error(id: request.id ?? .null, failure)
        case .submit(let envelope):
            precondition(envelope.verify(domain: domain) == .valid, "a submitted transaction that does not verify")
            reply = JSONRPC.result(id: request.id ?? .null, .string("0x" + Hex.encode(envelope.id.bytes)))
        }
        if let id = request.id { precondition(reply["id"] == id, "answer id \(String(describing: reply["id"])) for \(id)") }
        return request.id == nil ? nil : reply
    }
}

func checkAnswer(_ reply: JSON) {
    precondition(reply["jsonrpc"] == .string("2.0"), "not a JSON-RPC 2.0 answer: \(reply)")
    precondition(JSONRPC.outcome(of: reply) != nil, "neither result nor error: \(reply)")
    // What a node sends must read back as JSON.
    precondition(JSON.parse(reply.rendered) != nil, "answer does not render to JSON: \(reply)")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    let bytes = start.map { Array(UnsafeRawBufferPointer(start: $0, count: count)) } ?? []
    switch JSONRPC.parse(bytes) {
    case .single(let item):
        answer(item).map(checkAnswer)
    case .batch(let items):
        precondition(!items.isEmpty && items.count <= JSONRPC.batchMax, "batch of \(items.count)")
        items.compactMap(answer).forEach(checkAnswer)
    case .unusable(let failure):
        checkAnswer(JSONRPC.error(id: .null, failure))
    }
    return 0
}

/// With FAULTLINE_FUZZ_SEEDS=DIR, writes one real request per method (and a batch) into DIR.
@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>?, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> CInt {
    guard let dir = ProcessInfo.processInfo.environment["FAULTLINE_FUZZ_SEEDS"] else { return 0 }
    let address = JSON.string(Address(alice.publicKey).description)
    let hash = JSON.string("0x" + Hex.encode(good.id.bytes))
    let requests: [(String, [JSON])] = [
        ("web3_clientVersion", []), ("net_version", []), ("eth_chainId", []), ("eth_blockNumber", []),
        ("eth_getBlockByNumber", [.string("latest"), .bool(true)]), ("eth_getBlockByNumber", [.string("0x1"), .bool(false)]),
        ("eth_getBlockByHash", [.string("0x" + Hex.encode(view.blocks[1]!.id.bytes)), .bool(true)]),
        ("eth_getBalance", [address, .string("latest")]), ("eth_getTransactionCount", [address, .string("latest")]),
        ("eth_getTransactionReceipt", [hash]), ("eth_getTransactionByHash", [hash]),
        ("eth_sendRawTransaction", [.string("0x" + Hex.encode(good.bytes))]),
        ("faultline_status", []), ("faultline_getAccount", [.string(Hex.encode(alice.publicKey.bytes32.bytes))]),
    ]
    var bodies = requests.enumerated().map { index, request in
        (request.0, JSONRPC.Request(id: .int(Int64(index)), method: request.0, params: request.1).body.rendered)
    }
    bodies.append(("batch", JSON.array(requests.prefix(4).map { JSONRPC.Request(id: .string($0.0), method: $0.0).body }).rendered))
    bodies.append(("notification", JSONRPC.Request(id: nil, method: "eth_blockNumber").body.rendered))
    for (index, (name, body)) in bodies.enumerated() {
        _ = FileManager.default.createFile(atPath: "\(dir)/seed-\(index)-\(name)", contents: Data(body))
    }
    return 0
}
