/// One client operation of an external system's workload, as `workload/history.jsonl` records it.
public struct WorkloadRecord: Codable, Sendable, Equatable {
    public var client: Int
    /// The member the client sent it to.
    public var member: String
    /// "write" or "read".
    public var op: String
    /// The register (key) it is about.
    public var key: Int
    /// A write's value (unique in the run), or the value a read returned (nil: the key was absent).
    public var value: Int?
    public var invokeMs: UInt64
    /// nil unless `outcome` is "ok".
    public var completeMs: UInt64?
    /// "ok" (acknowledged), "fail" (never sent: no connection) or "unknown" (no answer, or an error after
    /// the request was sent: a write may still have taken effect).
    public var outcome: String
    /// The store's revision in the answer.
    public var revision: UInt64?
    public var error: String?

    public init(client: Int, member: String, op: String, key: Int, value: Int?, invokeMs: UInt64, completeMs: UInt64?,
                outcome: String, revision: UInt64?, error: String?) {
        self.client = client
        self.member = member
        self.op = op
        self.key = key
        self.value = value
        self.invokeMs = invokeMs
        self.completeMs = completeMs
        self.outcome = outcome
        self.revision = revision
        self.error = error
    }

    /// The marker key each write puts beside its register, so it can be looked for at the end.
    public static func marker(client: Int, sequence: Int) -> String { "a/\(client)/\(sequence)" }
}

/// What every member holds once the workload stopped and the members settled (`workload/final.json`).
public struct FinalReading: Codable, Sendable, Equatable {
    public struct Member: Codable, Sendable, Equatable {
        public var reachable: Bool
        public var revision: UInt64?
        /// The write markers it holds (`a/CLIENT/SEQ`), sorted.
        public var markers: [String]
        /// Each register's value there ("r0" → value).
        public var registers: [String: Int]
        public var error: String?

        public init(reachable: Bool, revision: UInt64?, markers: [String], registers: [String: Int], error: String?) {
            self.reachable = reachable
            self.revision = revision
            self.markers = markers
            self.registers = registers
            self.error = error
        }
    }

    public var members: [String: Member]
    /// Seconds the members took to reach one revision after the workload stopped (nil: they never did).
    public var settledSeconds: Double?

    public init(members: [String: Member], settledSeconds: Double?) {
        self.members = members
        self.settledSeconds = settledSeconds
    }
}
