import BatonTestSupport
import Foundation
import Testing

/// Canary analysis end to end: real agents, a real Prometheus (Debian's, started by the
/// tests) scraping one test service per host, and `baton rollout --canary 1` with the
/// app file's `analysis`. One fleet goes through three releases (a fleet and its first
/// Prometheus values cost seconds each): a good canary passes, a canary with a high
/// error rate is halted and reverted, a slower one pauses for a person.
@Suite("Canary analysis", .serialized)
struct CanaryAnalysisTests {
    /// The error ratio of one host of this fleet over the last 2 s.
    static func errorRatio(_ fleetLabel: String) -> String {
        "sum(rate(baton_test_requests_total{fleet=\"\(fleetLabel)\",host=\"{{host}}\",code=\"500\"}[2s])) / sum(rate(baton_test_requests_total{fleet=\"\(fleetLabel)\",host=\"{{host}}\"}[2s]))"
    }

    static func p99(_ fleetLabel: String) -> String {
        "histogram_quantile(0.99, sum by (le) (rate(baton_test_request_duration_seconds_bucket{fleet=\"\(fleetLabel)\",host=\"{{host}}\"}[2s])))"
    }

    /// `baton history show` of the rollout: the lines of its `analysis` events.
    static func analysisLines(_ fleet: LocalFleet, _ rolloutID: String) async throws -> [String] {
        let shown = try await fleet.run(["history", "show", rolloutID])
        #expect(shown.status == 0, "\(shown.stderr)")
        return shown.stdout.split(separator: "\n").map(String.init).filter { $0.contains("canary analysis") }
    }

    @Test("a good canary passes; a high error rate halts and reverts; a slower canary pauses until resumed")
    func aCanaryJudgedAgainstTheOldRelease() async throws {
        let fleet = try await RolloutTests.fleetOnV1(hosts: 3)
        defer { fleet.shutdown() }
        let prometheus = try PrometheusServer.shared()
        let label = "fleet-\(UInt32.random(in: 0...UInt32.max))"
        var services: [String: MetricsService] = [:]
        var targets: [String] = []
        for host in fleet.hostIDs {
            services[host] = try await MetricsService.start(.healthy)
            targets.append(try prometheus.addTarget(port: services[host]!.port, labels: ["host": host, "fleet": label]))
        }
        defer {
            for target in targets { prometheus.removeTarget(target) }
            let all = Array(services.values)
            Task { for service in all { await service.stop() } }
        }
        let canary = try #require(services["host-1"])
        let appFile = fleet.dir.child("apps/web.yaml")
        let appText = try String(contentsOfFile: appFile, encoding: .utf8)
        func analyse(_ query: String, _ bounds: String) throws {
            try (appText + "\nanalysis:\n  server: \(prometheus.url)\n  query: '\(query)'\n" + bounds)
                .write(toFile: appFile, atomically: true, encoding: .utf8)
        }
        func value(_ query: String, _ host: String, _ condition: @escaping (Double) -> Bool) async throws {
            try await prometheus.waitFor(query.replacing("{{host}}", with: host)) { $0.count == 1 && condition($0[0]) }
        }
        try analyse(
            Self.errorRatio(label),
            "  maxDifference: 0.01\n  failDifference: 0.05\n  maxRatio: 2\n  mannWhitney: {window: 4s, step: 1s, alpha: 0.05}\n")
        // Enough history for the Mann-Whitney test's window: 3 samples a side at the least
        // (fewer is inconclusive).
        for host in fleet.hostIDs {
            try await value("count_over_time((\(Self.errorRatio(label)))[4s:1s])", host) { $0 >= 4 }
        }

        // 1. Healthy everywhere: the analysis passes and the rollout finishes.
        let good = try RolloutTests.JSONRun(try await fleet.run(
            ["rollout", try await RolloutTests.signedRelease(fleet, "v2"), "--canary", "1", "--json"]))
        #expect(good.status == 0)
        #expect(good.summary["outcome"] as? String == "succeeded")
        for host in fleet.hostIDs { #expect(fleet.current(host) == "v2") }
        let passed = good.events.filter { $0["type"] as? String == "analysis" }.compactMap { $0["message"] as? String }
        #expect(passed.last == "canary analysis pass: canary 0 vs baseline 0 (1 canary, 2 baseline host(s)); difference 0 within maxDifference 0.01; ratio 1 within maxRatio 2; Mann-Whitney: p 1, not below alpha 0.05")

        // 2. The canary's every request fails: halted by the analysis, the canary reverted.
        canary.mode = .erroring
        try await value(Self.errorRatio(label), "host-1") { $0 == 1 }
        let bad = try RolloutTests.JSONRun(try await fleet.run(
            ["rollout", try await RolloutTests.signedRelease(fleet, "v3"), "--canary", "1", "--json"]))
        #expect(bad.status == 1)
        #expect(bad.summary["outcome"] as? String == "failed")
        #expect(bad.summary["haltReason"] as? String == "the canary analysis failed: difference 1 over failDifference 0.05")
        #expect(bad.list("reverted") == ["host-1"])
        #expect(bad.list("skipped") == ["host-2", "host-3"])
        for host in fleet.hostIDs { #expect(fleet.current(host) == "v2") }
        let badID = try #require(bad.summary["rolloutID"] as? String)
        let failed = try await Self.analysisLines(fleet, badID)
        let verdict = try #require(failed.first { $0.contains("canary analysis fail: ") }, "\(failed)")
        #expect(verdict.contains("canary analysis fail: canary 1 vs baseline 0 (1 canary, 2 baseline host(s)); difference 1 over failDifference 0.05; ratio +Inf over maxRatio 2; "), "\(verdict)")
        // The samples of the window, over Prometheus's range API: the canary's are all higher.
        #expect(verdict.contains("; Mann-Whitney: canary higher than baseline, p "), "\(verdict)")

        // 3. The canary is slow, between the pass and failure limits of its p99: paused for
        // a person, who resumes it.
        canary.mode = .slow
        try analyse(Self.p99(label), "  maxDifference: 0.1\n  failDifference: 2\n")
        // Only slow requests left in the window: p99 0.25 + 0.75 × 0.99 within the 0.25-1 bucket.
        try await value(Self.p99(label), "host-1") { abs($0 - 0.9925) < 1e-6 }
        let slow = try RolloutTests.JSONRun(try await fleet.run(
            ["rollout", try await RolloutTests.signedRelease(fleet, "v4"), "--canary", "1", "--json"]))
        #expect(slow.status == 5)
        #expect(slow.summary["outcome"] as? String == "paused")
        #expect(fleet.current("host-1") == "v4")
        #expect(fleet.current("host-2") == "v2")
        let slowID = try #require(slow.summary["rolloutID"] as? String)
        let inconclusive = try await Self.analysisLines(fleet, slowID)
        #expect(inconclusive.contains { $0.hasSuffix("canary analysis inconclusive: canary 0.9925 vs baseline 0.0495 (1 canary, 2 baseline host(s)); difference 0.943 over maxDifference 0.1 but within failDifference 2") },
                "\(inconclusive)")
        let resumed = try RolloutTests.JSONRun(try await fleet.run(["rollout", "resume", slowID, "--json"]))
        #expect(resumed.status == 0, "\(resumed.summary)")
        for host in fleet.hostIDs { #expect(fleet.current(host) == "v4") }
    }
}
