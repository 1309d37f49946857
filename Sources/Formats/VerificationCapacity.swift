/// What one validator can take in per second on this machine, measured at the start of a run (not
/// assumed) with the same libsodium call and codec the nodes use.
///
/// A spam datagram costs CPU three times on a one-machine cluster: the spammer sends it over loopback,
/// the kernel hands it to the validator's socket, and the validator decodes, hashes and verifies it.
/// `ingressPerCorePerSecond` times that whole path on one core; `verifyPerCorePerSecond` is the
/// signature check alone, for reference (both per second of CPU time). All validators and the spammer
/// share `cores`, of which the run gets `cpuShare` (what the probe got), so the bound for one validator is
/// `ingressPerCorePerSecond × cores × cpuShare ÷ validators`.
public struct VerificationCapacity: Codable, Sendable, Equatable {
    public var verifyPerCorePerSecond: Double
    public var ingressPerCorePerSecond: Double
    public var cores: Int
    public var validators: Int
    /// The share of a core the probe got while it measured (its CPU time ÷ wall time): below 1 when other
    /// work shares the machine (a CPU hog, other clusters). Absent in run records written before it was.
    public var cpuShare: Double?
    /// Cores each validator has to itself (a cluster on other machines: a pod's CPU limit); nil when the
    /// validators and the spammer share this machine's cores.
    public var coresPerValidator: Double?

    public init(verifyPerCorePerSecond: Double, ingressPerCorePerSecond: Double, cores: Int, validators: Int,
                cpuShare: Double? = nil, coresPerValidator: Double? = nil) {
        self.verifyPerCorePerSecond = verifyPerCorePerSecond
        self.ingressPerCorePerSecond = ingressPerCorePerSecond
        self.cores = cores
        self.validators = validators
        self.cpuShare = cpuShare
        self.coresPerValidator = coresPerValidator
    }

    /// The cores' worth of CPU this run can have: the usable cores times the share the probe got.
    public var availableCores: Double { Double(cores) * (cpuShare ?? 1) }

    /// What the machine can take in per second now: datagrams received and verified, over the available cores.
    public var ingressPerSecond: Double { ingressPerCorePerSecond * availableCores }

    /// What the machine a node runs on takes in per second: this one's available cores, or, when each node
    /// has cores of its own (a pod's CPU limit), those at the rate measured here.
    public var nodeMachinePerSecond: Double {
        coresPerValidator.map { ingressPerCorePerSecond * $0 } ?? ingressPerSecond
    }

    /// What one validator can take in: when all validators and the spammer share this machine's cores, a
    /// share of them; when each has cores of its own, what those take in at the rate measured here.
    public var perNodeBound: Double {
        if let coresPerValidator { return ingressPerCorePerSecond * coresPerValidator }
        return ingressPerSecond / Double(max(validators, 1))
    }
}

/// What a spam step asked for and what was sent (by the real blaster, or the simulator's model), as the
/// run's `scenario-run.json` records it for the report.
public struct SpamRecord: Codable, Sendable {
    public var id: String
    public var spec: String
    public var targetPerNode: Int
    public var validators: Int
    public var sent: Int
    public var seconds: Double
    public var achievedPerNode: Double

    public init(id: String, spec: String, targetPerNode: Int, validators: Int, sent: Int, seconds: Double,
                achievedPerNode: Double) {
        self.id = id
        self.spec = spec
        self.targetPerNode = targetPerNode
        self.validators = validators
        self.sent = sent
        self.seconds = seconds
        self.achievedPerNode = achievedPerNode
    }
}
