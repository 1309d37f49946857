import Formats
import Foundation

/// Process faults on nodes that are not this machine's processes (`RunManifest.remote`, an export to
/// Kubernetes), through each node's token-locked control port: a pause the node's own helper ends,
/// an upgrade the node records on its volume before it stops for its container to start again.
public enum RemoteFaults {
    public static func pause(_ targets: [String], seconds: Double, dir: String, manifest: RunManifest,
                             id: String) async throws -> String {
        let names = try await post(targets, path: "/pause", body: Array("{\"seconds\":\(seconds)}".utf8), dir: dir,
                             manifest: manifest)
        try FaultEngine.record(dir, .init(t: FaultEngine.now(), event: "start", id: id, action: "pause",
                                          description: "pause \(names.joined(separator: ",")) for \(seconds) s",
                                          nodes: names))
        return id
    }

    public static func upgrade(_ targets: [String], to binary: BinaryOverride, dir: String, manifest: RunManifest,
                               id: String) async throws -> String {
        let names = try await post(targets, path: "/upgrade", body: Array(try JSONEncoder().encode(binary)), dir: dir,
                                   manifest: manifest)
        try FaultEngine.record(dir, .init(t: FaultEngine.now(), event: "instant", id: id, action: "upgrade",
                                          description: "upgrade \(names.joined(separator: ",")) to version \(binary.version)",
                                          nodes: names))
        return id
    }

    /// POSTs `body` to `path` on the control port of every node the selectors name; the names.
    static func post(_ targets: [String], path: String, body: [UInt8], dir: String,
                     manifest: RunManifest) async throws -> [String] {
        let names = try FaultEngine.resolve(targets, in: manifest)
        let token = try RunFolder.token(dir)
        for name in names {
            let node = try ClusterOps.node(named: name, in: manifest)
            let response = try await ControlClient.request(host: node.host, port: node.controlPort, method: .POST,
                                                           path: path, token: token, body: body)
            guard response.status == 200 else {
                throw RunError("\(path) on \(name): \(String(decoding: response.body, as: UTF8.self))")
            }
        }
        return names
    }
}
