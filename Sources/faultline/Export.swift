import ArgumentParser
import Cluster
import Formats
import Foundation

/// `faultline export kubernetes FILE --out DIR`: the scenario as objects for a Kubernetes cluster with
/// Chaos Mesh (see `KubernetesExport`).
struct Export: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a scenario file as something another engine runs.",
        subcommands: [Kubernetes.self])

    struct Kubernetes: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Plain YAML for Kubernetes (StatefulSets, headless Services, a Secret, a ConfigMap, a collector "
                + "Job) with the schedule as a Chaos Mesh Workflow; apply with `kubectl apply -k DIR`.")

        @Argument(help: "Scenario file (TOML).")
        var file: String

        @Option(help: "Folder to write (created; files in it are replaced).")
        var out: String

        @Option(help: "The image with faultline and faultline-node (build it from the Containerfile written to --out).")
        var image: String = "localhost/faultline:latest"

        @Option(help: "The Kubernetes namespace for every object.")
        var namespace: String = "faultline"

        @Option(help: "Per node: CPU request and limit, e.g. 500m,2.")
        var cpu: String = "500m,2"

        @Option(help: "Per node: memory request and limit, e.g. 256Mi,1Gi.")
        var memory: String = "256Mi,1Gi"

        @Option(help: "Per node: the store's volume size.")
        var storage: String = "1Gi"

        func run() async throws {
            let scenario: Scenario
            do { scenario = try Scenario.load(path: file) } catch { throw Exit.badInput("\(error)") }
            var options = KubernetesExport.Options(image: image, namespace: namespace)
            let cpus = cpu.split(separator: ",").map(String.init), memories = memory.split(separator: ",").map(String.init)
            guard cpus.count == 2, memories.count == 2 else {
                throw Exit.badInput("--cpu and --memory take REQUEST,LIMIT (e.g. --cpu 500m,2 --memory 256Mi,1Gi)")
            }
            (options.cpuRequest, options.cpuLimit) = (cpus[0], cpus[1])
            (options.memoryRequest, options.memoryLimit) = (memories[0], memories[1])
            options.storage = storage
            let result: KubernetesExport.Result
            do {
                result = try KubernetesExport.make(scenario, options: options,
                                                   timeMs: UInt64(Date().timeIntervalSince1970 * 1000))
            } catch {
                throw Exit.badInput("\(file): \(error)")
            }
            do {
                try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
                for (name, text) in result.files {
                    try text.write(toFile: (out as NSString).appendingPathComponent(name), atomically: true, encoding: .utf8)
                }
                // The keys are in secret.yaml: readable by its owner only.
                try FileManager.default.setAttributes([.posixPermissions: 0o600],
                                                      ofItemAtPath: (out as NSString).appendingPathComponent("secret.yaml"))
            } catch {
                throw Exit.badInput("--out \(out): \(error)")
            }
            print("wrote \(result.files.count) files to \(out) for \(scenario.topology.nodes.count) nodes in namespace \(namespace):")
            for placement in result.placements {
                print("  \(placement.node): pod \(placement.pod) (\(placement.dnsName))")
            }
            print("the schedule, step by step:")
            for route in result.routes {
                let way = ["chaos-mesh": "Chaos Mesh", "not-run": "NOT RUN"][route.way] ?? route.way
                print("  \(route.step): \(way) — \(route.what)")
            }
            // A window as short as the placement slack leaves its "during" checks little or nothing to see.
            let slack = Double(RemoteRun.scheduleSlackMs) / 1000
            for step in scenario.steps where !LoadSteps.sends(step) {
                guard let window = ChaosSchedule.plannedWindow(step, in: scenario), window.seconds > 0,
                      window.seconds < 2 * slack else { continue }
                print("  note: \(step.id) lasts \(window.seconds) s; there a fault takes effect up to \(slack) s late, so checks "
                      + "during it see only the last \(String(format: "%.2f", max(0, window.seconds - slack))) s")
            }
            print("""
                next: build and push the image (\(out)/Containerfile), then
                  kubectl apply -k \(out)
                  kubectl -n \(namespace) wait --for=condition=ready pod -l app.kubernetes.io/component=collector --timeout=\(Int(scenario.scheduleSecondsMax) + 900)s
                  kubectl -n \(namespace) cp $(kubectl -n \(namespace) get pod -l app.kubernetes.io/component=collector -o name | cut -d/ -f2):/reports ./reports
                """)
        }
    }
}

/// `faultline rehearse kubernetes DIR`: an export run here from its files alone (see `Rehearsal`).
struct Rehearse: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run an export on this machine as a cluster would (needs root: namespaces, mounts, nftables).",
        subcommands: [Kubernetes.self])

    struct Kubernetes: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Pods as processes in network namespaces with the pods' DNS names, the Workflow's faults by the "
                + "kernel, the reports from the collector Job.")

        @Argument(help: "Folder `faultline export kubernetes` wrote.")
        var folder: String

        @Option(help: "Where to copy the collector's reports.")
        var out: String

        @Option(help: "Scratch folder (volumes, logs).")
        var work: String = ".faultline/rehearsal"

        @Flag(help: "Only remove what a killed rehearsal in --work left (processes, namespaces, mount points).")
        var clean = false

        func run() async throws {
            let workPath = URL(fileURLWithPath: work).standardized.path
            if clean {
                let left = Rehearsal.cleanLeftovers(work: workPath)
                if !left.isEmpty { throw Exit.failure("could not remove: \(left.joined(separator: ", "))") }
                print("nothing left of a rehearsal in \(work)")
                return
            }
            // Interrupted (Ctrl-C, a CI timeout): the rehearsal's processes, network and mount points go too.
            signal(SIGINT, SIG_IGN)
            signal(SIGTERM, SIG_IGN)
            let sources = [SIGINT, SIGTERM].map { (number: Int32) -> DispatchSourceSignal in
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler {
                    let left = Rehearsal.cleanLeftovers(work: workPath)
                    FileHandle.standardError.write(Data("rehearsal interrupted; cleaned up\(left.isEmpty ? "" : ", except \(left.joined(separator: ", "))")\n".utf8))
                    Foundation.exit(130)
                }
                source.resume()
                return source
            }
            defer { sources.forEach { $0.cancel() } }
            let binaries = (CommandLine.arguments[0] as NSString).deletingLastPathComponent
            let me = binaries.isEmpty ? FileManager.default.currentDirectoryPath : (binaries as NSString).standardizingPath
            let directory = me.hasPrefix("/") ? me : FileManager.default.currentDirectoryPath + "/" + me
            let outcome: Rehearsal.Outcome
            do {
                outcome = try await Rehearsal.run(folder, work: workPath,
                                                  binaries: directory, out: out) { print($0) }
            } catch {
                throw Exit.failure("\(error)")
            }
            print("rehearsal done; the collector's reports: \(outcome.reports)/report.html, report.json, junit.xml")
            let data = try Data(contentsOf: URL(fileURLWithPath: outcome.reports + "/report.json"))
            let verdict = (try? JSONSerialization.jsonObject(with: data) as? [String: Any])?["verdict"] as? String
            print("verdict: \(verdict ?? "?")")
            if verdict == "failed" { throw ExitCode(1) }
            if verdict == "inconclusive" { throw ExitCode(3) }
        }
    }
}
