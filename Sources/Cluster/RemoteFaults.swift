import Formats
import Foundation

/// Process faults on nodes that are not this machine's processes (`RunManifest.remote`, an export to
/// Kubernetes), through each node's token-locked control port: a pause the node's own helper ends,
/// an upgrade the node records on its volume before it stops for its container to start again.
public enum RemoteFaults {
    public static func pause(_ targets: [String], seconds: Double, dir: String, manifest: RunManifest,
                             id: String) async throws -> String {
        let names = try FaultEngine.resolve(targets, in: manifest)
        let token = try RunFolder.token(dir)
        let body = Array("{\"seconds\":\(seconds)}".utf8)
        for name in names {
            let node = try ClusterOps.node(named: name, in: manifest)
            let response = try await ControlClient.request(host: node.host, port: node.controlPort, method: .POST,
                                                           path: "/pause", token: token, body: body)
            guard response.status == 200 else {
                throw RunError("pause \(name): \(String(decoding: response.body, as: UTF8.self))")
            }
        }
        try FaultEngine.record(dir, .init(t: FaultEngine.now(), event: "start", id: id, action: "pause",
                                          description: "pause \(names.joined(separator: ",")) for \(seconds) s",
                                          nodes: names))
        return id
    }

    public static func upgrade(_ targets: [String], to binary: BinaryOverride, dir: String, manifest: RunManifest,
                               id: String) async throws -> String {
        let names = try FaultEngine.resolve(targets, in: manifest)
        let token = try RunFolder.token(dir)
        let body = try JSONEncoder().encode(binary)
        for name in names {
            let node = try ClusterOps.node(named: name, in: manifest)
            let response = try await ControlClient.request(host: node.host, port: node.controlPort, method: .POST,
                                                           path: "/upgrade", token: token, body: Array(body))
            guard response.status == 200 else {
                throw RunError("upgrade \(name): \(String(decoding: response.body, as: UTF8.self))")
            }
        }
        try FaultEngine.record(dir, .init(t: FaultEngine.now(), event: "instant", id: id, action: "upgrade",
                                          description: "upgrade \(names.joined(separator: ",")) to version \(binary.version)",
                                          nodes: names))
        return id
    }
}
