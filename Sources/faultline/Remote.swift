import ArgumentParser
import Cluster
import Formats
import Foundation
import Liveness

/// `faultline step FILE --id ID`: one step of a scenario against a running cluster, with the code a
/// local run uses. An exported schedule (Chaos Mesh Workflow) runs the steps Chaos Mesh has no kind
/// for this way, in a Task; `--ready` is the Workflow's first Task (the cluster finalizes).
struct StepCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "step",
        abstract: "Run one step of a scenario file against a running cluster: wait for its trigger (a height or an "
            + "event; a time is the caller's), apply it, undo it after its duration_s.")

    @Argument(help: "Scenario file (TOML).")
    var file: String

    @OptionGroup var runOption: RunOption

    @Option(help: "The step's id.")
    var id: String?

    @Flag(help: "Only wait until the cluster has finalized (every validator, or +2/3 of the stake).")
    var ready = false

    @Flag(help: "Only wait for the step's trigger (Chaos Mesh applies the fault itself).")
    var waitOnly = false

    @Option(help: "Seconds to wait for the cluster or a trigger before failing.")
    var timeout: Double = 900

    func run() async throws {
        let scenario: Scenario
        do { scenario = try Scenario.load(path: file) } catch { throw Exit.badInput("\(error)") }
        let dir = runOption.dir
        let manifest: RunManifest
        do { manifest = try RunFolder.load(dir) } catch { throw Exit.badInput("\(error)") }
        if ready {
            do {
                try await ClusterOps.waitUntil(dir: dir, timeoutSeconds: timeout, ClusterOps.isUp)
            } catch {
                throw Exit.failure("\(error)")
            }
            if manifest.remote == true {
                // The collector sends the load steps: the schedule waits until their transactions are signed.
                if scenario.steps.contains(where: LoadSteps.sends) {
                    guard await RemoteRun.waitForMark(RemoteRun.collectorReadyMark, dir: dir, manifest: manifest,
                                                      timeoutSeconds: timeout) != nil else {
                        throw Exit.failure("the collector did not say it was ready within \(Int(timeout)) s (its Job "
                                           + "signs the file's spam and airdrops first; is it running?)")
                    }
                }
                // The schedule starts now: each node logs the moment, so the collector can place the windows.
                await RemoteRun.mark(RemoteRun.scheduleStartMark, dir: dir, manifest: manifest)
            }
            print("cluster \(manifest.name) is up: every validator has finalized a block")
            return
        }
        guard let id, let step = scenario.steps.first(where: { $0.id == id }) else {
            throw Exit.badInput("\(file): no step with id '\(id ?? "")'; steps are "
                                + scenario.steps.map(\.id).joined(separator: ", "))
        }
        do {
            if case .atSeconds = step.trigger {} else {
                try await ClusterOps.waitUntil(dir: dir, timeoutSeconds: timeout) { states in
                    ScenarioRunner.isDue(step.trigger, elapsed: .infinity, states: states)
                }
                print("\(step.id): \(step.trigger) reached")
            }
            if waitOnly {
                // Chaos Mesh applies the fault next: the collector places its window from this moment.
                if manifest.remote == true {
                    await RemoteRun.mark(RemoteRun.triggerMark(step.id), dir: dir, manifest: manifest)
                }
                return
            }
            if LoadSteps.sends(step) || step.killStorm != nil {
                throw RunError("\(step.id): " + (step.killStorm != nil
                    ? "a kill storm SIGKILLs and restarts processes of this machine (and tears their stores' tails): "
                        + "run it locally"
                    : "spam, airdrops and forced transactions are sent by the runner (`faultline run`) or, on a "
                        + "remote cluster, by its collector (`faultline collect`)"))
            }
            // On a remote cluster the nodes' logs carry when the step took effect (and ended): the collector's
            // fault windows are then these moments, not the schedule's.
            let remote = manifest.remote == true
            if remote, case .pause(let targets) = step.action {
                let seconds = step.durationSeconds ?? Self.secondsUntilResume(step, in: scenario)
                // Marked first: a paused node answers nothing.
                await RemoteRun.mark(RemoteRun.stepMark(step.id, end: false), dir: dir, manifest: manifest)
                _ = try await RemoteFaults.pause(targets, seconds: seconds, dir: dir, manifest: manifest, id: step.id)
                print("\(step.id): paused \(targets.joined(separator: ",")) for \(seconds) s")
                return
            }
            _ = try await FaultEngine.apply(step.action, dir: dir, id: step.id, layer: .node)
            if remote { await RemoteRun.mark(RemoteRun.stepMark(step.id, end: false), dir: dir, manifest: manifest) }
            print("\(step.id): \(step.action.name) applied")
            if let duration = step.durationSeconds {
                try await Task.sleep(for: .milliseconds(Int(duration * 1000)))
                try await ScenarioRunner.undo(step, dir: dir)
                if remote { await RemoteRun.mark(RemoteRun.stepMark(step.id, end: true), dir: dir, manifest: manifest) }
                print("\(step.id): undone after \(duration) s")
            }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            throw Exit.failure("\(error)")
        }
    }

    /// A pause with no duration lasts until the step that resumes its nodes, else to the schedule's end.
    static func secondsUntilResume(_ step: Scenario.Step, in scenario: Scenario) -> Double {
        guard case .atSeconds(let start) = step.trigger else { return scenario.scheduleSecondsMax }
        for other in scenario.steps {
            if case .resume = other.action, case .atSeconds(let at) = other.trigger, at > start { return at - start }
        }
        return max(1, scenario.scheduleSecondsMax - start)
    }
}

/// `faultline collect FILE --from RUN --out DIR`: the collector of an exported run. Waits for the cluster,
/// sends the file's load while the schedule runs, gathers each node's event log over its control port
/// into a run folder of its own and writes report.json, junit.xml and report.html with the code
/// `faultline report` uses; the fault windows are the schedule's (Chaos Mesh applies them).
struct Collect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Gather a remote cluster's event logs after its schedule and write the reports (an export's collector).")

    @Argument(help: "Scenario file (TOML).")
    var file: String

    @Option(help: "The run folder the export wrote (read-only is fine: it is copied).")
    var from: String

    @Option(help: "Where to write report.json, junit.xml and report.html.")
    var out: String

    @Option(help: "Folder for the collected run (default: a new one under the system's temporary folder).")
    var work: String?

    @Option(help: "Seconds to stay running once the reports exist (for `kubectl cp`).")
    var keepS: Double = 0

    @Option(help: "Seconds to wait for the cluster to finalize.")
    var timeout: Double = 900

    @Option(help: "Seconds to wait, once the cluster is up, for the Workflow's ready Task to mark the schedule's start.")
    var scheduleWait: Double = 120

    @Option(help: ArgumentHelp("Cores each validator has to itself (its pod's CPU limit): spam at k× capacity is then k × "
        + "what that many cores take in at the rate measured here. Without it, the validators share this machine's cores."))
    var validatorCores: Double?

    func validate() throws {
        if let validatorCores, !(validatorCores > 0) {
            throw ValidationError("--validator-cores must be a positive number of cores, not \(validatorCores)")
        }
    }

    func run() async throws {
        let scenario: Scenario
        do { scenario = try Scenario.load(path: file) } catch { throw Exit.badInput("\(error)") }
        let dir = work ?? (NSTemporaryDirectory() + "faultline-collect-\(getpid())")
        let manifest: RunManifest
        do {
            manifest = try RemoteRun.copy(from: from, to: dir)
        } catch {
            throw Exit.badInput("--from \(from): \(error)")
        }
        // Before the schedule starts: the capacity the load steps' rates are multiples of, and their transactions.
        let load = await LoadSteps.prepare(scenario, coresPerValidator: validatorCores)
        do {
            try await ClusterOps.waitUntil(dir: dir, timeoutSeconds: timeout, ClusterOps.isUp)
        } catch {
            throw Exit.failure("\(error)")
        }
        let upAtMs = UInt64(Date().timeIntervalSince1970 * 1000)
        await RemoteRun.mark(RemoteRun.collectorReadyMark, dir: dir, manifest: manifest)
        let startMs: UInt64
        if let marked = await RemoteRun.waitForMark(RemoteRun.scheduleStartMark, dir: dir, manifest: manifest,
                                                    timeoutSeconds: scheduleWait) {
            startMs = marked
        } else {
            FileHandle.standardError.write(Data(("collect: no node logged the schedule's start (the Workflow's ready Task) "
                + "within \(Int(scheduleWait)) s; the schedule is placed from when the cluster was up\n").utf8))
            startMs = upAtMs
        }
        print("cluster \(manifest.name) is up; collecting for \(Int(scenario.durationSeconds)) s")
        let outcome: RemoteRun.Outcome
        do {
            outcome = try await RemoteRun.observe(scenario, dir: dir, manifest: manifest, startMs: startMs, load: load)
        } catch {
            throw Exit.failure("\(error)")
        }
        let sendsLoad = scenario.steps.contains(where: LoadSteps.sends)
        let record = ScenarioRecord(scenario: scenario.topology.name, seed: manifest.seed, startedAtMs: startMs,
                                    endedAtMs: outcome.endedAtMs, crashed: outcome.crashed,
                                    stepsFired: scenario.steps.filter { $0.killStorm == nil }.map(\.id), firstBlockMs: 0,
                                    capacity: sendsLoad ? load.capacity : nil, spam: sendsLoad ? load.spam : nil)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(record).write(to: URL(fileURLWithPath: dir + "/scenario-run.json"))
        let report: Report
        do { report = try Reports.build(dir: dir) } catch { throw Exit.failure("\(error)") }
        try Reports.write(report, to: out)
        Reports.printSummary(report, dir: out)
        if keepS > 0 {
            print("keeping the reports in \(out) for \(Int(keepS)) s")
            try? await Task.sleep(for: .seconds(keepS))
        }
        throw Reports.exitCode(report)
    }
}
