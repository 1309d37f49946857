import Sodium
import Testing
import Wire
@testable import Transport

/// The work the verification bound is measured on: what a node checks — every envelope valid, each from a
/// signer of its own with a message of its own — and the same on every machine, so bounds compare.
@Suite struct VerificationRateTests {
    @Test func theWorkloadIsDistinctValidSignaturesAndTheSameEveryTime() {
        let domain = Domain(chainId: "verification-rate")
        let envelopes = VerificationRate.workload(domain: domain)
        #expect(envelopes.count == VerificationRate.workloadSigners)
        #expect(envelopes.allSatisfy { $0.verify(domain: domain) == .valid })
        #expect(Set(envelopes.map(\.sender)).count == envelopes.count)
        #expect(Set(envelopes.map(\.signature)).count == envelopes.count)
        #expect(Set(envelopes.map(\.payload)).count == envelopes.count)
        #expect(VerificationRate.workload(domain: domain).map(\.signature) == envelopes.map(\.signature))
        // Signed for its own domain: checked under another, every one fails (the check is real).
        let other = Domain(chainId: "another-chain")
        #expect(envelopes.allSatisfy { $0.verify(domain: other) != .valid })
    }
}
