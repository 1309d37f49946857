import Ledger
import Sodium
import Wire

/// The JSON-RPC methods an rpc node serves, over a `ChainView`. Ethereum's execution API shapes where
/// a method fits (so web3.py, ethers and viem read chain id, heads, blocks, balances and receipts),
/// `faultline_*` for the rest. Pure: the answer depends only on the request and the view.
public enum Methods {
    public enum Answer: Sendable, Equatable {
        case result(JSON)
        case failure(JSONRPC.Failure)
        /// A verified transaction to hand to the network; the answer is its hash once it was queued.
        case submit(Envelope)
    }

    /// Methods whose answer does not change when repeated: a client or gateway may retry and hedge them.
    public static let idempotent: Set<String> = [
        "web3_clientVersion", "net_version", "eth_chainId", "eth_blockNumber", "eth_getBlockByNumber",
        "eth_getBlockByHash", "eth_getBalance", "eth_getTransactionCount", "eth_getTransactionReceipt",
        "eth_getTransactionByHash", "eth_syncing", "eth_gasPrice", "net_listening", "faultline_status",
        "faultline_getAccount",
    ]

    public static let all: [String] = idempotent.sorted() + ["eth_sendRawTransaction"]

    public static func handle(_ request: JSONRPC.Request, view: ChainView) -> Answer {
        do {
            return try answer(request, view: view)
        } catch {
            return .failure(error)
        }
    }

    static func answer(_ request: JSONRPC.Request, view: ChainView) throws(JSONRPC.Failure) -> Answer {
        let params = request.params
        switch request.method {
        case "web3_clientVersion": return .result(.string(view.clientVersion))
        case "net_version": return .result(.string(String(view.chainId)))
        case "net_listening": return .result(.bool(true))
        case "eth_chainId": return .result(JSON.quantity(view.chainId))
        case "eth_syncing": return .result(.bool(false))
        case "eth_gasPrice": return .result(JSON.quantity(0))
        case "eth_blockNumber": return .result(JSON.quantity(view.head))
        case "eth_getBlockByNumber":
            let height = try blockTag(params, 0, view: view)
            let full = try flag(params, 1)
            return .result(height.flatMap { view.blocks[$0] }.map { block($0, full: full, view: view) } ?? .null)
        case "eth_getBlockByHash":
            let hash = try hash32(params, 0)
            let full = try flag(params, 1)
            let entry = view.blockHeights[hash].flatMap { view.blocks[$0] }
            return .result(entry.map { block($0, full: full, view: view) } ?? .null)
        case "eth_getBalance", "eth_getTransactionCount":
            let address = try address(params, 0)
            try latestOnly(params, 1, view: view)
            let account = view.account(at: address) ?? Account(balance: 0, nonce: 0)
            return .result(JSON.quantity(request.method == "eth_getBalance" ? account.balance : account.nonce))
        case "eth_getTransactionReceipt":
            let hash = try hash32(params, 0)
            return .result(view.transaction(hash).map { receipt($0.0, $0.1) } ?? .null)
        case "eth_getTransactionByHash":
            let hash = try hash32(params, 0)
            return .result(view.transaction(hash).map { transaction($0.0, $0.1) } ?? .null)
        case "eth_sendRawTransaction":
            return .submit(try rawTransaction(params, domain: view.domain))
        case "faultline_status":
            return .result(.object([
                "chain": .string(view.chainName), "chainId": JSON.quantity(view.chainId),
                "head": JSON.quantity(view.head), "accounts": .int(Int64(view.accounts.count)),
                "client": .string(view.clientVersion),
            ]))
        case "faultline_getAccount":
            guard let text = params.first?.string, let key = Hex.decode(text.hasPrefix("0x") ? String(text.dropFirst(2)) : text)
                .flatMap(PublicKey.init) else {
                throw JSONRPC.Failure(.invalidParams, "params[0] must be a 32-byte Ed25519 public key in hex")
            }
            let account = view.accounts[key] ?? Account(balance: 0, nonce: 0)
            return .result(.object([
                "address": .string(Address(key).description), "balance": JSON.quantity(account.balance),
                "nonce": JSON.quantity(account.nonce), "head": JSON.quantity(view.head),
            ]))
        default:
            throw JSONRPC.Failure(.methodNotFound, "method '\(request.method)' is not served; served: "
                                  + all.joined(separator: ", "))
        }
    }

    // MARK: parameters

    static func blockTag(_ params: [JSON], _ index: Int, view: ChainView) throws(JSONRPC.Failure) -> UInt64? {
        guard index < params.count, let text = params[index].string else {
            throw JSONRPC.Failure(.invalidParams, "params[\(index)] must be a block number (0x…) or a tag")
        }
        switch text {
        case "latest", "safe", "finalized", "pending": return view.head
        case "earliest": return view.blocks.keys.min()
        default:
            guard let number = params[index].quantity else {
                throw JSONRPC.Failure(.invalidParams, "params[\(index)] '\(text.prefix(40))' is not a block number "
                                      + "(0x…) or latest, safe, finalized, pending, earliest")
            }
            return number
        }
    }

    static func flag(_ params: [JSON], _ index: Int) throws(JSONRPC.Failure) -> Bool {
        guard index < params.count else { return false }
        guard let value = params[index].bool else {
            throw JSONRPC.Failure(.invalidParams, "params[\(index)] must be true or false (full transactions)")
        }
        return value
    }

    static func hash32(_ params: [JSON], _ index: Int) throws(JSONRPC.Failure) -> Bytes32 {
        guard index < params.count, let text = params[index].string, text.hasPrefix("0x"),
              let bytes = Hex.decode(String(text.dropFirst(2))), let hash = Bytes32(bytes) else {
            throw JSONRPC.Failure(.invalidParams, "params[\(index)] must be a 32-byte hash (0x + 64 hex digits)")
        }
        return hash
    }

    static func address(_ params: [JSON], _ index: Int) throws(JSONRPC.Failure) -> Address {
        guard index < params.count, let text = params[index].string, let address = Address(hex: text.lowercased()) else {
            throw JSONRPC.Failure(.invalidParams, "params[\(index)] must be a 20-byte address (0x + 40 hex digits)")
        }
        return address
    }

    /// State is kept for the head only: a balance at an older block is refused, not guessed.
    static func latestOnly(_ params: [JSON], _ index: Int, view: ChainView) throws(JSONRPC.Failure) {
        guard index < params.count else { return }
        let height = try blockTag(params, index, view: view)
        guard height == view.head else {
            throw JSONRPC.Failure(.invalidParams, "state is served at the head (\(view.head)) only, not at block "
                                  + "\(height.map(String.init) ?? "?")")
        }
    }

    static func rawTransaction(_ params: [JSON], domain: Domain) throws(JSONRPC.Failure) -> Envelope {
        guard let text = params.first?.string, text.hasPrefix("0x"), let bytes = Hex.decode(String(text.dropFirst(2))) else {
            throw JSONRPC.Failure(.invalidParams, "params[0] must be a signed transaction in hex (0x…)")
        }
        let envelope: Envelope
        do {
            envelope = try Envelope(decoding: bytes)
        } catch {
            throw JSONRPC.Failure(.invalidParams, "params[0] is not a Faultline envelope: \(error)")
        }
        guard envelope.kind == .transfer else {
            throw JSONRPC.Failure(.invalidParams, "params[0] is a \(envelope.kind) message; only transfers are accepted")
        }
        guard case .valid = envelope.verify(domain: domain) else {
            throw JSONRPC.Failure(.transactionRejected, "bad signature (or signed for another chain or fork)")
        }
        guard (try? Transfer(decoding: envelope.payload)) != nil else {
            throw JSONRPC.Failure(.invalidParams, "params[0]'s payload is not a transfer")
        }
        return envelope
    }

    // MARK: results

    static let zeroHash = JSON.string("0x" + String(repeating: "0", count: 64))

    static func hex(_ bytes: Bytes32) -> JSON { .string("0x" + bytes.hex) }

    static func block(_ entry: ChainView.BlockEntry, full: Bool, view: ChainView) -> JSON {
        .object([
            "number": JSON.quantity(entry.height), "hash": hex(entry.id), "parentHash": hex(entry.parentId),
            "timestamp": JSON.quantity(entry.timeMs / 1000), "miner": .string(Address(entry.proposer).description),
            "stateRoot": hex(entry.stateRoot), "transactionsRoot": hex(entry.txRoot), "receiptsRoot": hex(entry.txRoot),
            "nonce": .string("0x0000000000000000"), "difficulty": JSON.quantity(0), "totalDifficulty": JSON.quantity(0),
            "gasLimit": JSON.quantity(30_000_000), "gasUsed": JSON.quantity(0), "baseFeePerGas": JSON.quantity(0),
            "size": JSON.quantity(UInt64(entry.sizeBytes)), "extraData": .string("0x"),
            "mixHash": zeroHash, "sha3Uncles": zeroHash, "uncles": .array([]),
            "logsBloom": .string("0x" + String(repeating: "0", count: 512)),
            "transactions": .array(entry.txs.indices.map { full ? transaction(entry, $0) : hex(entry.txs[$0].hash) }),
        ])
    }

    static func transaction(_ entry: ChainView.BlockEntry, _ index: Int) -> JSON {
        let tx = entry.txs[index]
        return .object([
            "hash": hex(tx.hash), "blockHash": hex(entry.id), "blockNumber": JSON.quantity(entry.height),
            "transactionIndex": JSON.quantity(UInt64(index)), "from": .string(Address(tx.from).description),
            "to": tx.transfer.map { .string(Address($0.to).description) } ?? .null,
            "value": JSON.quantity(tx.transfer?.amount ?? 0), "nonce": JSON.quantity(tx.transfer?.nonce ?? 0),
            "gas": JSON.quantity(0), "gasPrice": JSON.quantity(tx.fee), "input": .string("0x"), "type": .string("0x0"),
            "faultlineKind": .string(tx.kind.description),
        ])
    }

    static func receipt(_ entry: ChainView.BlockEntry, _ index: Int) -> JSON {
        let tx = entry.txs[index]
        return .object([
            "transactionHash": hex(tx.hash), "blockHash": hex(entry.id), "blockNumber": JSON.quantity(entry.height),
            "transactionIndex": JSON.quantity(UInt64(index)), "from": .string(Address(tx.from).description),
            "to": tx.transfer.map { .string(Address($0.to).description) } ?? .null,
            "status": JSON.quantity(tx.applied ? 1 : 0), "gasUsed": JSON.quantity(0),
            "cumulativeGasUsed": JSON.quantity(0), "effectiveGasPrice": JSON.quantity(tx.fee),
            "logs": .array([]), "logsBloom": .string("0x" + String(repeating: "0", count: 512)),
            "contractAddress": .null, "type": .string("0x0"),
        ])
    }
}
