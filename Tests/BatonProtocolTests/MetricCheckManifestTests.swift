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

    @Test func intervalAndWindowAreFieldsOfTheSignedPayload() throws {
        var manifest = Fixtures.manifest()
        let gate = MetricCheck(
            server: "http://127.0.0.1:9090", query: "sum(rate(errors{host=\"{{host}}\"}[{{window}}]))", max: 0.01,
            interval: .seconds(30), window: .minutes(5))
        manifest.health = HealthPolicy(checks: [.prometheus(gate)])
        let payload = Fixtures.payload(manifest)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(payload)) as? [String: Any])
        let check = try #require(((json["health"] as? [String: Any])?["checks"] as? [[String: Any]])?.first)
        #expect(check["interval"] as? String == "30s")
        #expect(check["window"] as? String == "5m")
        let parsed = try Manifest.parse(payload: payload)
        #expect(parsed == manifest)
        guard case .prometheus(let read) = parsed.health?.checks.first else {
            Issue.record("not a prometheus check")
            return
        }
        #expect(read.interval == .seconds(30))
        #expect(read.expandedQuery(host: "web-1", release: "v2") == "sum(rate(errors{host=\"web-1\"}[5m]))")
        // A window that PromQL writes with two units stays one duration: 1m30s.
        #expect(MetricCheck.expand("x[{{window}}]", host: "h", release: "r", window: BatonDuration(milliseconds: 90_000)) == "x[1m30s]")
        // Signed like the rest: a changed window breaks the signature.
        var envelope = Fixtures.envelope(manifest, signedBy: [Fixtures.alice])
        let text = String(decoding: envelope.payload, as: UTF8.self).replacingOccurrences(of: "\"5m\"", with: "\"1h\"")
        #expect(text != String(decoding: envelope.payload, as: UTF8.self))
        envelope.payload = Array(text.utf8)
        #expect(throws: VerificationError.self) {
            try ManifestVerifier.verify(
                envelope: envelope, policy: Fixtures.policy, host: HostIdentity(hostID: "h", environment: "staging"),
                history: { _ in .none }, now: Fixtures.now)
        }
    }

    @Test func badIntervalsAndWindowsAreRefused() throws {
        var manifest = Fixtures.manifest()
        func problems(_ query: String, interval: BatonDuration? = nil, window: BatonDuration? = nil) -> [String] {
            manifest.health = HealthPolicy(checks: [
                .prometheus(MetricCheck(server: "http://p:9090", query: query, max: 1, interval: interval, window: window))
            ])
            return manifest.problems()
        }
        #expect(problems("rate(x[{{window}}])") == [
            "health.checks[0].query uses {{window}} but the check gives no window (e.g. window: 1m)"
        ])
        #expect(problems("rate(x[{{window}}])", window: .seconds(30)) == [])
        #expect(problems("rate(x[1m])", window: .seconds(30)) == [
            "health.checks[0].window is given but the query does not use {{window}}"
        ])
        #expect(problems("rate(x[{{window}}])", window: .zero) == ["health.checks[0].window 0s is out of bounds (1s to 720h)"])
        #expect(problems("up", interval: BatonDuration(milliseconds: 500)) == [
            "health.checks[0].interval 500ms is out of bounds (1s to 1h)"
        ])
        #expect(problems("up", interval: .seconds(1)) == [])
        #expect(problems("up", interval: BatonDuration(milliseconds: 3_600_001)) == [
            "health.checks[0].interval 1h1ms is out of bounds (1s to 1h)"
        ])
        // A window that is not a duration is refused as the agent reads the payload.
        manifest.health = HealthPolicy(checks: [
            .prometheus(MetricCheck(server: "http://p:9090", query: "rate(x[{{window}}])", max: 1, window: .minutes(1)))
        ])
        let text = String(decoding: Fixtures.payload(manifest), as: UTF8.self).replacingOccurrences(
            of: "\"window\":\"1m\"", with: "\"window\":\"1 minute\"")
        #expect(text.contains("1 minute"))
        let error = try #require(throws: VerificationError.self) { try Manifest.parse(payload: Array(text.utf8)) }
        #expect(error.code == .invalidManifest)
        #expect("\(error)".contains("'1 minute' is not a duration"), "\(error)")
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
