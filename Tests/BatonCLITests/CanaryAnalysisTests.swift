import BatonTestSupport
import Foundation
import Testing

/// Canary analysis end to end: real agents, a real Prometheus (Debian's, started by the
/// tests) scraping one test service per host, and `baton rollout --canary 1` with the
/// app file's `analysis`.
@Suite("Canary analysis", .serialized)
struct CanaryAnalysisTests {
    /// The error ratio of one host of this fleet over the last 3 s.
    static func errorRatio(_ fleetLabel: String) -> String {
        "sum(rate(baton_test_requests_total{fleet=\"\(fleetLabel)\",host=\"{{host}}\",code=\"500\"}[3s])) / sum(rate(baton_test_requests_total{fleet=\"\(fleetLabel)\",host=\"{{host}}\"}[3s]))"
    }

    static func p99(_ fleetLabel: String) -> String {
        "histogram_quantile(0.99, sum by (le) (rate(baton_test_request_duration_seconds_bucket{fleet=\"\(fleetLabel)\",host=\"{{host}}\"}[3s])))"
    }

    struct Setup {
        var fleet: LocalFleet
        var prometheus: PrometheusServer
        var services: [String: MetricsService]
        var targets: [String]

        func stop() async {
            for target in targets { prometheus.removeTarget(target) }
            for service in services.values { await service.stop() }
            fleet.shutdown()
        }
    }

    /// Three hosts on v1, each with a service in `modes[host]` (healthy otherwise), scraped
    /// by Prometheus; the app file's analysis asks `query` with `bounds`. Returns once
    /// Prometheus has a value of `query` for every host.
    static func setUp(modes: [String: MetricsService.Mode], query: (String) -> String, bounds: String) async throws -> Setup {
        let fleet = try await RolloutTests.fleetOnV1(hosts: 3)
        let prometheus = try PrometheusServer.shared()
        let label = "fleet-\(UInt32.random(in: 0...UInt32.max))"
        var services: [String: MetricsService] = [:]
        var targets: [String] = []
        for host in fleet.hostIDs {
            let service = try await MetricsService.start(modes[host] ?? .healthy)
            services[host] = service
            targets.append(try prometheus.addTarget(port: service.port, labels: ["host": host, "fleet": label]))
        }
        let app = fleet.dir.child("apps/web.yaml")
        let text = try String(contentsOfFile: app, encoding: .utf8)
        try (text + """

            analysis:
              server: \(prometheus.url)
              query: '\(query(label))'
            \(bounds)
            """).write(toFile: app, atomically: true, encoding: .utf8)
        for host in fleet.hostIDs {
            try await prometheus.waitFor(query(label).replacing("{{host}}", with: host)) { $0.count == 1 && !$0[0].isNaN }
        }
        return Setup(fleet: fleet, prometheus: prometheus, services: services, targets: targets)
    }

    /// `baton history show` of the rollout: the lines of its `analysis` events.
    static func analysisLines(_ fleet: LocalFleet, _ rolloutID: String) async throws -> [String] {
        let shown = try await fleet.run(["history", "show", rolloutID])
        #expect(shown.status == 0, "\(shown.stderr)")
        return shown.stdout.split(separator: "\n").map(String.init).filter { $0.contains("canary analysis") }
    }

    @Test("a canary with a high error rate is halted by the analysis and reverted; history shows the numbers")
    func badCanaryHalted() async throws {
        let setup = try await Self.setUp(
            modes: ["host-1": .erroring], query: Self.errorRatio, bounds: "  maxDifference: 0.01\n  failDifference: 0.05")
        defer { Task { await setup.stop() } }
        let fleet = setup.fleet
        let envelope = try await RolloutTests.signedRelease(fleet, "v2")
        let run = try RolloutTests.JSONRun(try await fleet.run(["rollout", envelope, "--canary", "1", "--json"]))
        #expect(run.status == 1)
        #expect(run.summary["outcome"] as? String == "failed")
        let reason = try #require(run.summary["haltReason"] as? String)
        #expect(reason == "the canary analysis failed: difference 1 over failDifference 0.05", "\(reason)")
        #expect(run.list("reverted") == ["host-1"])
        #expect(run.list("skipped") == ["host-2", "host-3"])
        for host in fleet.hostIDs { #expect(fleet.current(host) == "v1") }
        let lines = try await Self.analysisLines(fleet, try #require(run.summary["rolloutID"] as? String))
        #expect(lines.contains { $0.hasSuffix("canary analysis fail: canary 1 vs baseline 0 (1 canary, 2 baseline host(s)); difference 1 over failDifference 0.05") },
                "\(lines)")
    }

    @Test("a healthy canary passes the analysis and the rollout finishes")
    func goodCanaryPasses() async throws {
        let setup = try await Self.setUp(modes: [:], query: Self.errorRatio, bounds: "  maxDifference: 0.01\n  maxRatio: 2")
        defer { Task { await setup.stop() } }
        let fleet = setup.fleet
        let envelope = try await RolloutTests.signedRelease(fleet, "v2")
        let run = try RolloutTests.JSONRun(try await fleet.run(["rollout", envelope, "--canary", "1", "--json"]))
        #expect(run.status == 0)
        #expect(run.summary["outcome"] as? String == "succeeded")
        for host in fleet.hostIDs { #expect(fleet.current(host) == "v2") }
        let analysis = run.events.filter { $0["type"] as? String == "analysis" }.compactMap { $0["message"] as? String }
        #expect(analysis.last == "canary analysis pass: canary 0 vs baseline 0 (1 canary, 2 baseline host(s)); difference 0 within maxDifference 0.01; ratio 1 within maxRatio 2")
    }

    @Test("a slower canary between the pass and failure limits pauses the rollout; resume finishes it")
    func inconclusivePauses() async throws {
        let setup = try await Self.setUp(
            modes: ["host-1": .slow], query: Self.p99, bounds: "  maxDifference: 0.1\n  failDifference: 2")
        defer { Task { await setup.stop() } }
        let fleet = setup.fleet
        let envelope = try await RolloutTests.signedRelease(fleet, "v2")
        let run = try RolloutTests.JSONRun(try await fleet.run(["rollout", envelope, "--canary", "1", "--json"]))
        #expect(run.status == 5)
        #expect(run.summary["outcome"] as? String == "paused")
        #expect(fleet.current("host-1") == "v2")
        #expect(fleet.current("host-2") == "v1")
        let rolloutID = try #require(run.summary["rolloutID"] as? String)
        let lines = try await Self.analysisLines(fleet, rolloutID)
        #expect(lines.contains { $0.contains("canary analysis inconclusive: canary 0.9925 vs baseline 0.0495") && $0.contains("but within failDifference 2") },
                "\(lines)")
        // A person looked and decided: resume deploys the rest.
        let resumed = try RolloutTests.JSONRun(try await fleet.run(["rollout", "resume", rolloutID, "--json"]))
        #expect(resumed.status == 0, "\(resumed.summary)")
        for host in fleet.hostIDs { #expect(fleet.current(host) == "v2") }
    }
}
