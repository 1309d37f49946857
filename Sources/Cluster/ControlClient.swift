import Formats
import RPCClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Wire

/// Requests to the nodes' control ports (and etcd's HTTP API): `HTTP1Client`, one connection each.
public enum ControlClient {
    public typealias Response = HTTP1Client.Response

    static let http = HTTP1Client(keepAlive: false, connectTimeout: .seconds(2))

    public static func request(host: String = "127.0.0.1", port: Int, method: HTTPMethod = .GET, path: String, token: String?,
                               body: [UInt8] = [], timeout: TimeAmount = .seconds(2)) async throws -> Response {
        var headers: [(String, String)] = []
        if !body.isEmpty { headers.append(("content-type", "application/json")) }
        if let token { headers.append(("authorization", "Bearer \(token)")) }
        do {
            // A silent node (e.g. paused with SIGSTOP) is cut off at `timeout`.
            return try await http.request(host: host, port: port, method: method, path: path, headers: headers,
                                          body: body, timeout: timeout)
        } catch let failure as HTTP1Client.Failure where failure.notSent {
            throw NotConnected(host: host, port: port, underlying: "\(failure)")
        } catch {
            throw RunError("control port \(port): \(error)")
        }
    }

    /// The connection was never made (refused, unreachable, timed out connecting): the request was not sent.
    public struct NotConnected: Error, CustomStringConvertible {
        public var host: String
        public var port: Int
        public var underlying: String
        public var description: String { "cannot connect to \(host):\(port): \(underlying)" }
    }

    /// GET /status decoded.
    public static func status(host: String = "127.0.0.1", port: Int, token: String,
                              timeout: TimeAmount = .seconds(2)) async throws -> NodeStatus {
        let response = try await request(host: host, port: port, path: "/status", token: token, timeout: timeout)
        guard response.status == 200 else { throw RunError("control port \(port): HTTP \(response.status)") }
        return try JSONDecoder().decode(NodeStatus.self, from: Data(response.body))
    }

    /// GET /metrics: the sum of one metric's samples over its label sets (nil if the node does not export it).
    public static func metricSum(_ name: String, host: String = "127.0.0.1", port: Int, token: String,
                                 timeout: TimeAmount = .seconds(2)) async throws -> Double? {
        let response = try await request(host: host, port: port, path: "/metrics", token: token, timeout: timeout)
        guard response.status == 200 else { throw RunError("control port \(port): HTTP \(response.status)") }
        return metricSum(name, in: String(decoding: response.body, as: UTF8.self))
    }

    /// The sum of `name`'s samples in Prometheus text (`name value` or `name{labels} value` lines).
    public static func metricSum(_ name: String, in text: String) -> Double? {
        var sum: Double?
        for line in text.split(separator: "\n") where line.hasPrefix(name) {
            let rest = line.dropFirst(name.count)
            guard rest.first == " " || rest.first == "{", let value = rest.split(separator: " ").last.flatMap({ Double($0) })
            else { continue }
            sum = (sum ?? 0) + value
        }
        return sum
    }
}
