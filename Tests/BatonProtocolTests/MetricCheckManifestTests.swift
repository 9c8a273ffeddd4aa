import BatonProtocol
import Foundation
import Testing

/// `type: prometheus` in the manifest: its fields beside `type`, its bounds checked, its
/// verdicts on values.
@Suite struct MetricCheckManifestTests {
    static let gate = MetricCheck(
        server: "http://127.0.0.1:9090", query: "sum(rate(errors{host=\"{{host}}\"}[1m]))", max: 0.01, failAbove: 0.05,
        failureLimit: 2, consecutiveErrorLimit: 3)

    @Test func roundTripsInTheSignedPayloadWithItsFieldsBesideType() throws {
        var manifest = Fixtures.manifest()
        manifest.health = HealthPolicy(checks: [.prometheus(Self.gate)])
        let payload = Fixtures.payload(manifest)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(payload)) as? [String: Any])
        let check = try #require(((json["health"] as? [String: Any])?["checks"] as? [[String: Any]])?.first)
        #expect(check["type"] as? String == "prometheus")
        #expect(check["server"] as? String == "http://127.0.0.1:9090")
        #expect(check["max"] as? Double == 0.01)
        #expect(try Manifest.parse(payload: payload) == manifest)
        // Signed like the rest: a changed bound breaks the signature.
        var envelope = Fixtures.envelope(manifest, signedBy: [Fixtures.alice])
        let text = String(decoding: envelope.payload, as: UTF8.self).replacingOccurrences(of: "0.01", with: "0.9")
        envelope.payload = Array(text.utf8)
        #expect(throws: VerificationError.self) {
            try ManifestVerifier.verify(
                envelope: envelope, policy: Fixtures.policy, host: HostIdentity(hostID: "h", environment: "staging"),
                history: { _ in .none }, now: Fixtures.now)
        }
    }

    @Test func badGatesAreRefusedWithEveryProblemNamed() {
        var manifest = Fixtures.manifest()
        manifest.health = HealthPolicy(checks: [
            .prometheus(MetricCheck(server: "https://p:9090?x=1", query: " ", min: 2, max: 1, failAbove: 0.5, failureLimit: 101))
        ])
        let problems = manifest.problems()
        #expect(problems.contains("health.checks[0].server must be an http:// URL without a query"))
        #expect(problems.contains("health.checks[0].query must be PromQL of at most 4096 bytes"))
        #expect(problems.contains("health.checks[0].min must not exceed max"))
        #expect(problems.contains("health.checks[0].failAbove must be at least max"))
        #expect(problems.contains("health.checks[0].failureLimit 101 is out of bounds (0 to 100)"))
        manifest.health = HealthPolicy(checks: [.prometheus(MetricCheck(server: "http://p:9090", query: "up"))])
        #expect(manifest.problems() == ["health.checks[0] needs a success bound: min, max or both"])
    }

    @Test func verdicts() {
        #expect(Self.gate.judge(0.01) == .successful)
        #expect(Self.gate.judge(0.03) == .inconclusive)
        #expect(Self.gate.judge(0.06) == .failed)
        #expect(Self.gate.judge(.nan) == .failed)
        let plain = MetricCheck(server: "http://p", query: "q", min: 0.99)
        #expect(plain.judge(0.5) == .failed)
        #expect(plain.judge(1) == .successful)
        #expect(Self.gate.bounds == "max 0.01, failAbove 0.05")
        #expect(HealthCheck.prometheus(Self.gate).summary == "prometheus sum(rate(errors{host=\"{{host}}\"}[1m])) (max 0.01, failAbove 0.05)")
    }
}
