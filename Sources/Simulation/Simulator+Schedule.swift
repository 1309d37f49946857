import Formats
import Consensus
import Ledger
import Sodium
import Wire

/// A scenario file uses something the simulator does not model.
public struct UnsupportedInSimulation: Error, CustomStringConvertible {
    public let description: String
}

struct StormState {
    var spec: KillStormSpec
    var id: String
    var targets: [Int]
    var startUs: UInt64
    var kills = 0
    /// Victims not back yet: dead, starting, or running but not caught up (`KillStormSpec.caughtUpHeights`).
    var down: [Int] = []
    var finished = false
}

struct LoadState {
    var rate: Int
    var startUs: UInt64
    var endUs: UInt64
    var sent = 0
    var accounts: [SigningKey?]
    var nonces: [UInt64]
    var targets: [Int]
    /// `layer = "l2"`: L2 transfers to the sequencer.
    var l2: Bool
}

extension Simulator {
    /// The load generator's pace: what is due goes out every 5 ms, as the real one's loop does (at 50 ms
    /// the transactions came in bursts that left every other 25 ms block empty, and a node restarted on a new
    /// binary found an empty tip, whose re-execution cannot differ, where a real one finds fees).
    static let loadIntervalMs: UInt64 = 5

    /// Refuses, with the file, field and reason, what the simulator would otherwise get wrong.
    public static func checkSupported(_ scenario: Scenario) throws {
        let topology = scenario.topology
        func refuse(_ field: String, _ problem: String) -> UnsupportedInSimulation {
            UnsupportedInSimulation(description: "\(topology.path): \(field): \(problem) (not simulated; "
                                    + "run it on a real cluster with `faultline run`)")
        }
        if topology.rpcLoad?.clients.contains("external") == true {
            throw refuse("rpc_load", "the \"external\" client's endpoint is outside the simulated cluster")
        }
        if let external = topology.external {
            throw refuse("external", "\(external.system) is a program of its own; only Faultline's protocol cores run in "
                         + "simulated time")
        }
        if let step = scenario.steps.first(where: { $0.layer == .kernel }) {
            throw refuse("step \(step.id).layer", "the kernel layer needs real network namespaces; simulated links are "
                         + "the node layer's")
        }
    }

    var selectable: [(name: String, labels: [String: String])] { topology.nodes.map { ($0.name, $0.labels) } }

    func slots(_ selectors: [String]) -> [Int] {
        let names = (try? FaultEngine.resolve(selectors, nodes: selectable)) ?? []
        return names.compactMap { name in nodes.firstIndex { $0.name == name } }
    }

    // MARK: the schedule

    /// The first finalized block: the scenario's clock starts (steps, load, end).
    func beginSchedule() {
        scenarioStartUs = nowUs
        beginRPC()
        for (index, step) in scenario.steps.enumerated() {
            if case .atSeconds(let seconds) = step.trigger {
                queue.push(.step(index), atUs: nowUs + UInt64(seconds * 1_000_000))
            } else {
                waitingSteps.append(index)
            }
        }
        let load = topology.load
        if load.rateTxPerSecond > 0 {
            let startUs = nowUs + UInt64(load.startSeconds * 1_000_000)
            loadState = LoadState(rate: load.rateTxPerSecond, startUs: startUs,
                                  endUs: nowUs + UInt64(scenario.durationSeconds * 1_000_000),
                                  accounts: Array(repeating: nil, count: max(load.accounts, 1)),
                                  nonces: Array(repeating: 0, count: max(load.accounts, 1)),
                                  targets: nodes.filter { $0.role == (load.l2 ? "sequencer" : "validator") }.map(\.slot),
                                  l2: load.l2)
            queue.push(.load, atUs: startUs)
        }
        queue.push(.end, atUs: nowUs + UInt64(scenario.durationSeconds * 1_000_000))
    }

    /// Height and proposer triggers, checked after commits and round changes.
    func checkWaitingSteps() {
        guard !waitingSteps.isEmpty, let start = scenarioStartUs else { return }
        let elapsed = Double(nowUs - start) / 1_000_000
        for index in waitingSteps {
            let due: Bool
            switch scenario.steps[index].trigger {
            case .atHeight(let height):
                due = nodes.contains { $0.storeHeight >= height }
            case .whenProposer(let name, let after):
                let target = validators.members.firstIndex { $0.name == name }
                due = elapsed >= after && nodes.contains { node in
                    guard node.name != name, let consensus = node.consensus else { return false }
                    return validators.proposer(height: consensus.height, round: consensus.round) == target
                }
            case .whenGameOpen:
                due = nodes.contains { $0.state == .running && ($0.ledger.disputes?.gamesOpen ?? 0) > 0 }
            case .atSeconds:
                due = false
            }
            if due {
                waitingSteps.removeAll { $0 == index }
                queue.push(.step(index), atUs: nowUs)
            }
        }
    }

    func fire(_ index: Int) {
        guard !ended, !settling else { return }
        let step = scenario.steps[index]
        stepsFired.append(step.id)
        if let storm = step.killStorm {
            startStorm(storm, step: index)
            return
        }
        if let spam = step.spam {
            setSpam(spam, step: step, on: true)
            queue.push(.undo(index), atUs: nowUs + UInt64((step.durationSeconds ?? 1) * 1_000_000))
            return
        }
        switch step.rollupLoad {
        case .forced(let count):
            postForced(step: step, count: count)
            return
        case .airdrop(let count, let rate, let fee):
            startAirdrop(step: index, count: count, rate: rate, fee: fee)
            return
        case nil:
            break
        }
        apply(step.action, id: step.id)
        if let duration = step.durationSeconds { queue.push(.undo(index), atUs: nowUs + UInt64(duration * 1_000_000)) }
    }

    /// The heal of a step with a duration (as the real runner's).
    func undo(_ step: Scenario.Step) {
        if let spam = step.spam {
            setSpam(spam, step: step, on: false)
            return
        }
        switch step.action {
        case .kill(let targets): apply(.restart(targets: targets), id: step.id + "-heal")
        case .pause(let targets): apply(.resume(targets: targets), id: step.id + "-heal")
        case .partition, .link: apply(.heal(id: step.id), id: step.id + "-heal")
        case .skew(let targets, _): apply(.skew(targets: targets, ms: 0), id: step.id + "-heal")
        case .byzantine(let targets, _): apply(.byzantine(targets: targets, modes: []), id: step.id + "-heal")
        case .rpc(let targets, _): apply(.rpc(targets: targets, fault: .ok), id: step.id + "-heal")
        case .resume, .restart, .heal, .upgrade: break
        }
    }

    func record(_ event: String, id: String, action: String, description: String, nodes names: [String]) {
        logs.record(FaultEvent(t: nowMs, event: event, id: id, action: action, description: description, nodes: names))
    }

    /// Ends the open windows of `action` that touch `names` (as `FaultEngine.endWindows`).
    func endWindows(action: String, nodes names: [String]) {
        var open: [String: FaultEvent] = [:]
        for event in logs.timeline { if event.event == "start" { open[event.id] = event } else { open[event.id] = nil } }
        for (_, event) in open.sorted(by: { $0.key < $1.key }) where event.action == action {
            guard event.nodes.contains(where: names.contains) else { continue }
            record("end", id: event.id, action: action, description: event.description, nodes: event.nodes)
        }
    }

    func apply(_ action: FaultAction, id: String) {
        switch action {
        case .kill(let targets), .pause(let targets):
            let chosen = slots(targets)
            for slot in chosen {
                if action.name == "kill" { nodes[slot].crash() } else { nodes[slot].pause() }
            }
            record("start", id: id, action: action.name,
                   description: "\(action.name) \(chosen.map { nodes[$0].name }.joined(separator: ","))",
                   nodes: chosen.map { nodes[$0].name })
        case .resume(let targets):
            let chosen = slots(targets)
            for slot in chosen { nodes[slot].resume() }
            endWindows(action: "pause", nodes: chosen.map { nodes[$0].name })
        case .restart(let targets):
            let chosen = slots(targets)
            // Restarting a running node is a moment on the timeline; restarting a killed one ends its window.
            let wereRunning = chosen.filter { nodes[$0].state != .down }.map { nodes[$0].name }
            for slot in chosen {
                nodes[slot].crash()
                queue.push(.start(node: slot), atUs: nowUs + settings.startupMs * 1_000)
            }
            if !wereRunning.isEmpty {
                record("instant", id: id, action: "restart", description: "restart \(wereRunning.joined(separator: ","))",
                       nodes: wereRunning)
            }
            endWindows(action: "kill", nodes: chosen.map { nodes[$0].name })
            endWindows(action: "pause", nodes: chosen.map { nodes[$0].name })
        case .partition, .link:
            guard let (description, links) = try? FaultEngine.linkFault(action, nodes: selectable) else { return }
            activeLinkFaults.removeAll { $0.id == id }
            activeLinkFaults.append((id, links))
            pushLinkTables()
            let names = Array(Set(links.flatMap { [$0.from, $0.to] })).sorted()
            record("start", id: id, action: links.first?.rule.blocked == true ? "partition" : "link",
                   description: description, nodes: names)
        case .heal(let healId):
            let healed = activeLinkFaults.filter { healId == nil || $0.id == healId }
            activeLinkFaults.removeAll { healId == nil || $0.id == healId }
            pushLinkTables()
            for fault in healed {
                let open = logs.timeline.last { $0.id == fault.id && $0.event == "start" }
                record("end", id: fault.id, action: "heal", description: open?.description ?? fault.id,
                       nodes: Array(Set(fault.links.flatMap { [$0.from, $0.to] })).sorted())
            }
        case .skew(let targets, let ms):
            let chosen = slots(targets)
            for slot in chosen {
                nodes[slot].clockSkewMs = ms
                nodes[slot].log(Replica.Event("clock_skew", [("skewMs", .int(ms))]))
            }
            let names = chosen.map { nodes[$0].name }
            if ms == 0 {
                endWindows(action: "skew", nodes: names)
            } else {
                record("start", id: id, action: "skew", description: "clock skew \(ms) ms on \(names.joined(separator: ","))",
                       nodes: names)
            }
        case .byzantine(let targets, let modes):
            let chosen = slots(targets)
            for slot in chosen { nodes[slot].setByzantine(modes) }
            let names = chosen.map { nodes[$0].name }
            monitor.addLiars(chosen.map { nodes[$0].keyName })
            if modes.isEmpty {
                endWindows(action: "byzantine", nodes: names)
            } else {
                record("start", id: id, action: "byzantine",
                       description: "byzantine \(modes.map(\.rawValue).joined(separator: "+")) on "
                           + names.joined(separator: ","), nodes: names)
            }
        case .upgrade(let targets, let version, let versionMin, let forkId):
            // Like an operator swapping binaries: the node stops, and starts again on the new one.
            let chosen = slots(targets)
            for slot in chosen {
                let node = nodes[slot]
                node.binary.version = version
                node.binary.versionMin = versionMin ?? min(node.binary.versionMin, version)
                if let forkId { node.binary.forkId = forkId }
                node.crash()
                queue.push(.start(node: slot), atUs: nowUs + settings.startupMs * 1_000)
            }
            let names = chosen.map { nodes[$0].name }
            endWindows(action: "kill", nodes: names)
            endWindows(action: "pause", nodes: names)
            var changes = ["version \(version)"]
            if let versionMin { changes.append("version_min \(versionMin)") }
            if let forkId { changes.append("fork id \(forkId)") }
            record("instant", id: id, action: "upgrade",
                   description: "upgrade \(names.joined(separator: ",")) to \(changes.joined(separator: ", "))", nodes: names)
        case .rpc(let targets, let fault):
            let chosen = slots(targets).filter { nodes[$0].rpcView != nil }
            for slot in chosen { nodes[slot].setRPCFault(fault) }
            let names = chosen.map { nodes[$0].name }
            endWindows(action: "rpc", nodes: names)
            if fault.mode != "ok" {
                record("start", id: id, action: "rpc", description: "rpc \(fault) on \(names.joined(separator: ","))",
                       nodes: names)
            }
        }
    }

    /// Every node's outgoing link rules: the fold of the active link faults.
    func pushLinkTables() {
        let faults = activeLinkFaults.map(\.links)
        for node in nodes { shapers[node.slot].setTable(FaultEngine.linkTable(of: node.name, faults: faults)) }
    }

    // MARK: load

    /// Signed transfers at the topology's rate, round-robin over accounts and validators, as the real
    /// load generator sends them (and logged as its submissions are).
    func sendLoad() {
        guard var load = loadState, !ended else { return }
        let elapsedUs = min(nowUs, load.endUs) - load.startUs
        let due = Int(Double(load.rate) * Double(elapsedUs) / 1_000_000) - load.sent
        if due > 0 {
            for _ in 0..<due {
                let index = load.sent % load.accounts.count
                let key = load.accounts[index] ?? ClusterSetup.accountKey(chainId: topology.chainId, seed: settings.seed,
                                                                       index: index)
                load.accounts[index] = key
                let next = (index + 1) % load.accounts.count
                let receiver = load.accounts[next]?.publicKey
                    ?? ClusterSetup.accountKey(chainId: topology.chainId, seed: settings.seed, index: next).publicKey
                let transfer = Transfer(to: receiver, amount: 1, fee: 1, nonce: load.nonces[index])
                load.nonces[index] += 1
                let envelope = Envelope(kind: load.l2 ? .l2Transfer : .transfer, payload: transfer.encoded, domain: domain,
                                        key: key)
                let target = load.targets[load.sent % load.targets.count]
                load.sent += 1
                logs.submitted(timeMs: nowMs, tx: envelope.id.short, l2: load.l2)
                let latencyMs = settings.latencyMs + (rng.nextUnit() * 2 - 1) * settings.jitterMs
                queue.push(.deliver(to: target, from: -1, .made(envelope)), atUs: nowUs + UInt64(max(0, latencyMs) * 1_000))
            }
        }
        loadState = load
        if nowUs < load.endUs { queue.push(.load, atUs: nowUs + Simulator.loadIntervalMs * 1_000) }
    }

    /// A `forced_tx` step: the claims to every validator as L1 transactions (as the runner posts them).
    func postForced(step: Scenario.Step, count: Int) {
        let claims = ForcedClaims(chainId: topology.chainId, seed: settings.seed, stepId: step.id, count: count,
                                  sentMs: nowMs)
        for envelope in claims.envelopes {
            for target in nodes where target.role == "validator" {
                let latencyMs = settings.latencyMs + (rng.nextUnit() * 2 - 1) * settings.jitterMs
                queue.push(.deliver(to: target.slot, from: -1, .made(envelope)), atUs: nowUs + UInt64(max(0, latencyMs) * 1_000))
            }
        }
        record("instant", id: step.id, action: "forced_tx", description: "\(count) forced transaction(s) to the L1 inbox",
               nodes: [])
        logs.forced.append(claims.record)
    }

    // MARK: kill storms

    func startStorm(_ spec: KillStormSpec, step: Int) {
        let id = scenario.steps[step].id
        let targets = slots(spec.targets)
        storms[step] = StormState(spec: spec, id: id, targets: targets, startUs: nowUs)
        record("start", id: id, action: "kill_storm", description: spec.description, nodes: targets.map { nodes[$0].name })
        scheduleStormKill(step)
    }

    private func scheduleStormKill(_ step: Int) {
        guard let storm = storms[step] else { return }
        let meanGapMs = storm.spec.seconds * 1_000 / Double(max(storm.spec.count, 1))
        queue.push(.stormKill(step: step), atUs: nowUs + UInt64(meanGapMs * (0.25 + 1.5 * rng.nextUnit()) * 1_000))
    }

    func stormKill(_ step: Int) {
        guard var storm = storms[step], !storm.finished else { return }
        let over = storm.kills >= storm.spec.count || Double(nowUs - storm.startUs) / 1_000_000 >= storm.spec.seconds
        if over || ended {
            storm.finished = true
            storms[step] = storm
            for slot in storm.down where nodes[slot].state == .down { nodes[slot].start() }
            record("end", id: storm.id, action: "kill_storm", description: storm.spec.description,
                   nodes: storm.targets.map { nodes[$0].name })
            return
        }
        // A victim counts as down until it runs again and has caught up, as in the real storm.
        let peers = nodes.indices.filter { slot in
            storm.targets.contains(slot) || validators.members.contains { $0.name == nodes[slot].name }
        }
        let best = peers.filter { nodes[$0].state == .running && !storm.down.contains($0) }
            .map { nodes[$0].storeHeight }.max() ?? 0
        storm.down.removeAll { nodes[$0].state == .running && nodes[$0].storeHeight + KillStormSpec.caughtUpHeights >= best }
        let downNow = storm.down.count
        let candidates = storm.targets.filter { nodes[$0].state == .running && !storm.down.contains($0) }
        if downNow < storm.spec.downMax, !candidates.isEmpty {
            let slot = candidates[Int(rng.next() % UInt64(candidates.count))]
            nodes[slot].crash()
            storm.kills += 1
            storm.down.append(slot)
            logs.killLine(timeMs: nowMs, event: "kill", node: nodes[slot].name, storm: storm.id)
            let share = KillStormSpec.downShareMin + (1 - KillStormSpec.downShareMin) * rng.nextUnit()
            queue.push(.stormRestart(step: step, node: slot), atUs: nowUs + UInt64(Double(storm.spec.downMsMax) * share * 1_000))
            storms[step] = storm
            scheduleStormKill(step)
        } else {
            // The kill is overdue, not redrawn: like the real storm, which polls its victims every
            // `probeIntervalMs` and kills as soon as one answers (redrawing the gap here killed a
            // quarter less often than the real storm, and the simulated run never halted where the
            // real one did for 4 s; the fidelity check caught it).
            storms[step] = storm
            queue.push(.stormKill(step: step), atUs: nowUs + UInt64(KillStormSpec.probeIntervalMs) * 1_000)
        }
    }

    /// A victim starts again (with a torn store tail, sometimes) and counts as down until it runs and
    /// has caught up (`stormKill` takes it off the storm's down list then).
    func stormRestart(_ step: Int, slot: Int) {
        guard let storm = storms[step], nodes[slot].state == .down else { return }
        if storm.spec.tornPercent > 0, rng.nextPercent() < storm.spec.tornPercent {
            let bytes = 36 + rng.next() % 200
            nodes[slot].tornTailBytes = bytes
            logs.killLine(timeMs: nowMs, event: "torn", node: nodes[slot].name, storm: storm.id, bytes: bytes)
        }
        logs.killLine(timeMs: nowMs, event: "restart", node: nodes[slot].name, storm: storm.id)
        queue.push(.start(node: slot), atUs: nowUs + settings.startupMs * 1_000)
    }

    /// The end of the scenario: heal what is still broken (as the real runner does), let the chain
    /// settle, stop.
    func finish() {
        if let start = scenarioStartUs, nowUs < start + UInt64((scenario.durationSeconds + scenario.settleSeconds) * 1_000_000),
           !settling {
            settling = true
            for (index, step) in scenario.steps.enumerated() where stepsFired.contains(step.id) {
                if step.durationSeconds != nil, healed.insert(index).inserted { undo(step) }
            }
            for (step, storm) in storms where !storm.finished {
                storms[step]!.finished = true
                for slot in storm.down where nodes[slot].state == .down { nodes[slot].start() }
                record("end", id: storm.id, action: "kill_storm", description: storm.spec.description,
                       nodes: storm.targets.map { nodes[$0].name })
            }
            queue.push(.end, atUs: nowUs + UInt64(scenario.settleSeconds * 1_000_000))
            return
        }
        for node in nodes where node.state == .paused { node.resume() }
        for node in nodes where node.state == .running { node.logDrops() }
        ended = true
    }
}

// MARK: spam

extension Simulator {
    /// A run with a spam step models every validator's receive path (`SimIngress`) from its start.
    var modelsIngress: Bool { scenario.steps.contains { $0.spam != nil } }

    func freshIngress(_ slot: Int) -> SimIngress? {
        guard modelsIngress, nodes[slot].me != nil else { return nil }
        let limits = topology.limits
        return SimIngress(capacityPerSecond: capacity.perNodeBound, lanes: limits.lanes,
                          unstakedPerSecond: limits.userAdmissionRates(verifyPerSecond: capacity.verifyPerCorePerSecond).unstaked,
                          nowUs: nowUs)
    }

    /// A process is gone: what lived in it goes too. Its sockets come back empty, votes-only off (the spam
    /// aimed at it goes on); a gateway's policy starts afresh and its open requests are never answered.
    func processEnded(_ slot: Int) {
        resetGateway(slot)
        guard ingress.indices.contains(slot), let old = ingress[slot], var fresh = freshIngress(slot) else { return }
        fresh.setSpam(perSecond: old.spamPerSecond, nowUs: nowUs)
        ingress[slot] = fresh
    }

    /// A spam step's window: every validator gets `spam` (a rate, or k× its share of the capacity).
    func setSpam(_ spam: SpamSpec, step: Scenario.Step, on: Bool) {
        let perNode = spam.ratePerNode(capacity)
        for slot in nodes.indices where nodes[slot].me != nil {
            if ingress[slot] == nil { ingress[slot] = freshIngress(slot) }
            ingress[slot]?.setSpam(perSecond: on ? Double(perNode) : 0, nowUs: nowUs)
        }
        record(on ? "start" : "end", id: step.id, action: "spam", description: "\(spam) (\(perNode) tx/s per validator)",
               nodes: [])
        if !on {
            let validators = nodes.filter { $0.me != nil }.count
            let seconds = step.durationSeconds ?? 1
            spamSent.append(SpamRecord(id: step.id, spec: "\(spam)", targetPerNode: perNode, validators: validators,
                                       sent: Int(Double(perNode * validators) * seconds), seconds: seconds,
                                       achievedPerNode: Double(perNode)))
        }
    }
}
