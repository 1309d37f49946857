import Formats
import Foundation
import NIOCore

/// The `etcd` workload: each client, one operation at a time at its share of the rate, writes or reads
/// one of a few registers (`r0`, `r1`, …) through etcd's v3 JSON gateway. A write is a transaction that
/// also puts a marker key of its own (`a/CLIENT/SEQ`), so `finalReading` can tell whether every
/// acknowledged write is on every member. Reads are etcd's default (linearizable). A client whose
/// request fails moves to the next member, as etcd's own clients do.
enum EtcdWorkload {
    static func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

    static func decode(_ base64: Any?) -> String? {
        (base64 as? String).flatMap { Data(base64Encoded: $0) }.map { String(decoding: $0, as: UTF8.self) }
    }

    /// POSTs a JSON body to a member's gateway; the decoded answer.
    static func post(_ path: String, _ body: [String: Any], workload: ExternalSystem.Workload, system: ExternalSystem,
                     member: ExternalSystem.Member, timeoutMs: Int) async throws -> [String: Any] {
        let (host, port, base) = try ExternalProbe.split(system.render(workload.url, member: member, members: [], cluster: ""))
        let data = try JSONSerialization.data(withJSONObject: body)
        let response = try await ControlClient.request(host: host, port: port, method: .POST,
                                                       path: (base == "/" ? "" : base) + path, token: nil,
                                                       body: Array(data), timeout: .milliseconds(Int64(timeoutMs)))
        let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
        guard response.status == 200, let object else {
            let message = (object?["error"] as? String) ?? String(decoding: response.body.prefix(200), as: UTF8.self)
            throw RunError("HTTP \(response.status): \(message)")
        }
        return object
    }

    static func client(_ client: Int, workload: ExternalSystem.Workload, system: ExternalSystem,
                       members: [ExternalSystem.Member], history: Observer.HistoryLog, logs: Observer.EventLogs,
                       stop: Observer.StopFlag) async {
        var generator = SystemRandomNumberGenerator()
        var memberIndex = client % members.count
        let interval = Double(workload.clients) / Double(workload.ratePerSecond)
        var next = Date()
        var sequence = 0
        while !stop.isSet {
            next = max(next.addingTimeInterval(interval), Date())
            let wait = next.timeIntervalSinceNow
            if wait > 0 { try? await Task.sleep(for: .milliseconds(Int(wait * 1000))) }
            if stop.isSet { break }
            sequence += 1
            let key = Int.random(in: 0..<workload.keys, using: &generator)
            let isWrite = Double.random(in: 0..<100, using: &generator) < workload.writePercent
            let member = members[memberIndex]
            let value = client * 100_000_000 + sequence
            let invoke = FaultEngine.now()
            var record = WorkloadRecord(client: client, member: member.name, op: isWrite ? "write" : "read", key: key,
                                        value: isWrite ? value : nil, invokeMs: invoke, completeMs: nil,
                                        outcome: "unknown", revision: nil, error: nil)
            do {
                let answer: [String: Any]
                if isWrite {
                    answer = try await post("/v3/kv/txn", ["success": [
                        ["requestPut": ["key": base64("r\(key)"), "value": base64(String(value))]],
                        ["requestPut": ["key": base64(WorkloadRecord.marker(client: client, sequence: sequence)),
                                        "value": base64(String(value))]],
                    ]], workload: workload, system: system, member: member, timeoutMs: workload.timeoutMs)
                } else {
                    answer = try await post("/v3/kv/range", ["key": base64("r\(key)"),
                                                              "serializable": workload.reads == "serializable"],
                                            workload: workload,
                                            system: system, member: member, timeoutMs: workload.timeoutMs)
                    let kvs = answer["kvs"] as? [[String: Any]] ?? []
                    record.value = kvs.first.flatMap { decode($0["value"]) }.flatMap { Int($0) }
                }
                record.completeMs = FaultEngine.now()
                record.outcome = "ok"
                record.revision = ExternalSystem.number(ExternalSystem.value(at: "header.revision", in: answer))
                if let revision = record.revision { logs.progress(member.name, revision) }
            } catch let error as ControlClient.NotConnected {
                record.outcome = "fail"
                record.error = error.description
                if !workload.sticky { memberIndex = (memberIndex + 1) % members.count }
            } catch {
                record.error = "\(error)"
                if !workload.sticky { memberIndex = (memberIndex + 1) % members.count }
            }
            history.write(record)
        }
    }

    /// Once the workload stopped: up to `settleSeconds` for every reachable member to report one revision,
    /// then what each holds, read from it alone (serializable reads).
    static func finalReading(workload: ExternalSystem.Workload, system: ExternalSystem, members: [ExternalSystem.Member],
                             settleSeconds: Double = 15) async -> FinalReading {
        let started = Date()
        var settled: Double?
        while Date().timeIntervalSince(started) < settleSeconds {
            var revisions: [UInt64] = []
            for member in members {
                if let revision = await ExternalProbe.progress(system, member: member) { revisions.append(revision) }
            }
            if !revisions.isEmpty, Set(revisions).count == 1 {
                settled = Date().timeIntervalSince(started)
                break
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
        var out: [String: FinalReading.Member] = [:]
        for member in members {
            do {
                let markers = try await post("/v3/kv/range", [
                    "key": base64("a/"), "range_end": base64("a0"), "keys_only": true, "serializable": true,
                ], workload: workload, system: system, member: member, timeoutMs: 5_000)
                let registers = try await post("/v3/kv/range", [
                    "key": base64("r"), "range_end": base64("s"), "serializable": true,
                ], workload: workload, system: system, member: member, timeoutMs: 5_000)
                var values: [String: Int] = [:]
                for kv in registers["kvs"] as? [[String: Any]] ?? [] {
                    if let key = decode(kv["key"]), let value = decode(kv["value"]).flatMap({ Int($0) }) { values[key] = value }
                }
                out[member.name] = .init(
                    reachable: true, revision: ExternalSystem.number(ExternalSystem.value(at: "header.revision", in: markers)),
                    markers: (markers["kvs"] as? [[String: Any]] ?? []).compactMap { decode($0["key"]) }.sorted(),
                    registers: values, error: nil)
            } catch {
                out[member.name] = .init(reachable: false, revision: nil, markers: [], registers: [:], error: "\(error)")
            }
        }
        return FinalReading(members: out, settledSeconds: settled)
    }
}
