/// JSON-RPC 2.0 framing: requests parsed from an HTTP body (single or batch), responses built with
/// the standard error codes. Anything a client sends gets an answer, never a trap.
public enum JSONRPC {
    /// Standard codes (-32700...-32600) and the Ethereum API's server range.
    public enum Code: Int64, Sendable {
        case parseError = -32700
        case invalidRequest = -32600
        case methodNotFound = -32601
        case invalidParams = -32602
        case internalError = -32603
        /// The transaction was refused (EIP-1474's "transaction rejected").
        case transactionRejected = -32003
        /// Rate limited, too many requests in flight, or a request too large (EIP-1474's "limit exceeded").
        case limitExceeded = -32005
        /// No upstream could answer (EIP-1474's "resource unavailable").
        case resourceUnavailable = -32002
    }

    public struct Failure: Error, Sendable, Equatable {
        public var code: Int64
        public var message: String

        public init(_ code: Code, _ message: String) {
            self.code = code.rawValue
            self.message = message
        }

        public init(code: Int64, message: String) {
            self.code = code
            self.message = message
        }
    }

    public struct Request: Sendable, Equatable {
        /// nil for a notification (no `id` member): it is executed but not answered.
        public var id: JSON?
        public var method: String
        public var params: [JSON]

        public init(id: JSON?, method: String, params: [JSON] = []) {
            self.id = id
            self.method = method
            self.params = params
        }

        public var body: JSON {
            var fields: [String: JSON] = ["jsonrpc": .string("2.0"), "method": .string(method), "params": .array(params)]
            if let id { fields["id"] = id }
            return .object(fields)
        }
    }

    /// One element of a body: a request to execute, or an answer already decided (a malformed element).
    public enum Item: Sendable, Equatable {
        case request(Request)
        case invalid(id: JSON, Failure)
    }

    public enum Body: Sendable, Equatable {
        case single(Item)
        case batch([Item])
        /// Not JSON at all, an empty batch, or a batch over the limit: one error answers it.
        case unusable(Failure)
    }

    public static let batchMax = 100
    public static let methodBytesMax = 128

    /// Parses an HTTP body. The answer for a `.batch` is an array of the answers of its elements.
    public static func parse(_ bytes: [UInt8], batchMax: Int = JSONRPC.batchMax) -> Body {
        guard let json = JSON.parse(bytes) else { return .unusable(Failure(.parseError, "body is not JSON")) }
        if case .array(let elements) = json {
            guard !elements.isEmpty else { return .unusable(Failure(.invalidRequest, "empty batch")) }
            guard elements.count <= batchMax else {
                return .unusable(Failure(.limitExceeded, "batch of \(elements.count) requests, at most \(batchMax)"))
            }
            return .batch(elements.map(item))
        }
        return .single(item(json))
    }

    static func item(_ json: JSON) -> Item {
        guard case .object(let fields) = json else {
            return .invalid(id: .null, Failure(.invalidRequest, "a request is a JSON object"))
        }
        let id = fields["id"]
        switch id {
        case nil, .null?, .string?, .int?, .double?: break
        default: return .invalid(id: .null, Failure(.invalidRequest, "id must be a string, a number or null"))
        }
        guard fields["jsonrpc"] == .string("2.0") else {
            return .invalid(id: id ?? .null, Failure(.invalidRequest, "jsonrpc must be \"2.0\""))
        }
        guard let method = fields["method"]?.string, !method.isEmpty, method.utf8.count <= methodBytesMax else {
            return .invalid(id: id ?? .null, Failure(.invalidRequest, "method must be a non-empty string"))
        }
        let params: [JSON]
        switch fields["params"] {
        case nil, .null?: params = []
        case .array(let list)?: params = list
        default: return .invalid(id: id ?? .null, Failure(.invalidParams, "params must be an array (by position)"))
        }
        return .request(Request(id: id, method: method, params: params))
    }

    public static func result(id: JSON, _ value: JSON) -> JSON {
        .object(["jsonrpc": .string("2.0"), "id": id, "result": value])
    }

    public static func error(id: JSON, _ failure: Failure) -> JSON {
        .object(["jsonrpc": .string("2.0"), "id": id,
                 "error": .object(["code": .int(failure.code), "message": .string(failure.message)])])
    }

    /// What a response body says: the result, or the error it carries; nil when it is not a response.
    public static func outcome(of response: JSON) -> Result<JSON, Failure>? {
        if let error = response["error"] {
            guard case .int(let code)? = error["code"] else { return nil }
            return .failure(Failure(code: code, message: error["message"]?.string ?? ""))
        }
        guard let result = response["result"] else { return nil }
        return .success(result)
    }
}
