@testable import BatonAgent
import BatonProtocol
import BatonTestSupport
import Foundation
import Logging
import Testing

/// `prometheus` health checks against a real Prometheus (Debian's, started by the tests)
/// scraping a real service that a test makes healthy, slow or erroring.
@Suite struct MetricCheckTests {
    let checker = HealthChecker(
        hookRunner: HookRunner(logger: Logger(label: "test.metrics"), killGrace: .milliseconds(200)),
        logger: Logger(label: "test.metrics"))

    /// The share of requests answered 500 on the host, over the last 2 s.
    static let errorRatio = """
        sum(rate(baton_test_requests_total{host="{{host}}",code="500"}[2s])) / sum(rate(baton_test_requests_total{host="{{host}}"}[2s]))
        """

    static let p99 = "histogram_quantile(0.99, sum by (le) (rate(baton_test_request_duration_seconds_bucket{host=\"{{host}}\"}[2s])))"

    /// The services every test of the suite reads, started and scraped once per process
    /// (one wait for Prometheus's first values instead of one per test), each under its
    /// own `host` label: `metric-healthy`, `metric-erroring`, `metric-slow`, and
    /// `metric-bake`, healthy until the bake test makes it fail.
    struct Services: Sendable {
        let prometheus: PrometheusServer
        let bake: MetricsService

        static let hosts: [(String, MetricsService.Mode)] = [
            ("metric-healthy", .healthy), ("metric-erroring", .erroring), ("metric-slow", .slow), ("metric-bake", .healthy),
        ]

        private static let started = Task { () throws -> Services in
            let prometheus = try PrometheusServer.shared()
            var services: [String: MetricsService] = [:]
            for (host, mode) in hosts {
                let service = try await MetricsService.start(mode)
                services[host] = service
                _ = try prometheus.addTarget(port: service.port, labels: ["host": host])
            }
            for (host, _) in hosts {
                try await prometheus.waitFor(MetricCheckTests.errorRatio.replacing("{{host}}", with: host)) { $0.count == 1 && !$0[0].isNaN }
            }
            try await prometheus.waitFor(MetricCheckTests.p99.replacing("{{host}}", with: "metric-slow")) { $0.count == 1 && $0[0] > 0.5 }
            return Services(prometheus: prometheus, bake: services["metric-bake"]!)
        }

        static func get() async throws -> Services { try await started.value }
    }

    func check(_ prometheus: String, query: String = MetricCheckTests.errorRatio, max: Double = 0.05, failureLimit: Int? = nil,
               consecutiveErrorLimit: Int? = nil) -> HealthCheck {
        .prometheus(
            MetricCheck(
                server: prometheus, query: query, max: max, failureLimit: failureLimit,
                consecutiveErrorLimit: consecutiveErrorLimit))
    }

    func waitUntilHealthy(_ check: HealthCheck, host: String, deadline: BatonDuration = .seconds(5))
        async -> (Bool, [HealthAttempt])
    {
        let seen = Seen()
        let healthy = await checker.waitUntilHealthy(
            HealthPolicy(checks: [check], timeout: .seconds(2), interval: BatonDuration(milliseconds: 200), deadline: deadline),
            stage: "checking", release: "r1", workingDirectory: "/tmp", environment: ["BATON_HOST": host],
            onAttempt: { await seen.add($0) })
        return (healthy, await seen.attempts)
    }

    actor Seen {
        var attempts: [HealthAttempt] = []
        func add(_ more: [HealthAttempt]) { attempts += more }
    }

    @Test func aHealthyServicePassesWithItsValueRecorded() async throws {
        let prometheus = try await Services.get().prometheus
        let (healthy, attempts) = await waitUntilHealthy(check(prometheus.url), host: "metric-healthy")
        #expect(healthy, "\(attempts.map(\.detail))")
        let measurement = try #require(attempts.last?.measurement)
        #expect(measurement.verdict == .successful)
        #expect(measurement.value == 0)
        #expect(measurement.bounds == "max 0.05")
        #expect(attempts.last?.detail == "value 0 within max 0.05: successful")
    }

    @Test func anErroringServiceFailsAtOnceWithTheDefaultFailureLimit() async throws {
        let prometheus = try await Services.get().prometheus
        let (healthy, attempts) = await waitUntilHealthy(check(prometheus.url), host: "metric-erroring", deadline: .seconds(10))
        #expect(!healthy)
        // One measurement, not the 10 s deadline: failureLimit 0.
        #expect(attempts.count == 1)
        let measurement = try #require(attempts.last?.measurement)
        #expect(measurement.verdict == .failed)
        #expect(measurement.value == 1)
        #expect(measurement.code == "metric_check_failed")
        #expect(attempts.last?.detail == "value 1 outside max 0.05: failed (failures 1, limit 0)")
    }

    @Test func theFailureLimitToleratesThatManyFailures() async throws {
        let prometheus = try await Services.get().prometheus
        let (healthy, attempts) = await waitUntilHealthy(
            check(prometheus.url, failureLimit: 2), host: "metric-erroring", deadline: .seconds(10))
        #expect(!healthy)
        #expect(attempts.map { $0.measurement?.failures } == [1, 2, 3])
        #expect(attempts.map { $0.measurement?.number } == [1, 2, 3])
        #expect(attempts.map { $0.measurement?.code } == [nil, nil, "metric_check_failed"])
    }

    @Test func aSlowServiceFailsALatencyGate() async throws {
        let prometheus = try await Services.get().prometheus
        let (healthy, attempts) = await waitUntilHealthy(check(prometheus.url, query: Self.p99, max: 0.25), host: "metric-slow")
        #expect(!healthy)
        let measurement = try #require(attempts.last?.measurement)
        #expect(measurement.verdict == .failed)
        #expect((measurement.value ?? 0) > 0.25)
    }

    @Test func aValueBetweenTheBoundsAndTheFailureThresholdIsInconclusive() async throws {
        let prometheus = try await Services.get().prometheus
        // p99 about 0.99: over max 0.5, short of failAbove 2.
        let gate = HealthCheck.prometheus(MetricCheck(server: prometheus.url, query: Self.p99, max: 0.5, failAbove: 2))
        let (healthy, attempts) = await waitUntilHealthy(gate, host: "metric-slow")
        #expect(!healthy)
        #expect(attempts.count == 1)
        let measurement = try #require(attempts.last?.measurement)
        #expect(measurement.verdict == .inconclusive)
        #expect(measurement.code == "metric_check_inconclusive")
        #expect(attempts.last?.detail.hasSuffix("short of the failure thresholds: inconclusive (inconclusive 1, limit 0)") == true,
                "\(attempts.map(\.detail))")
    }

    @Test func checkingPassesAfterCountSuccessesInARow() async throws {
        let prometheus = try await Services.get().prometheus
        let gate = HealthCheck.prometheus(MetricCheck(server: prometheus.url, query: Self.errorRatio, max: 0.05, count: 3))
        let (healthy, attempts) = await waitUntilHealthy(gate, host: "metric-healthy")
        #expect(healthy)
        #expect(attempts.map(\.passed) == [false, false, true])
        #expect(attempts.map(\.detail).last == "value 0 within max 0.05: successful (3 of 3 in a row)")
    }

    @Test func noDataIsAFailureNeverAPass() async throws {
        let prometheus = try PrometheusServer.shared()
        // A series no target exposes: the answer is an empty vector.
        let (healthy, attempts) = await waitUntilHealthy(
            check(prometheus.url, query: "sum(rate(baton_test_requests_total{host=\"{{host}}\"}[2s]))"), host: "nobody-here")
        #expect(!healthy)
        #expect(attempts.count == 1)
        #expect(attempts.last?.measurement?.code == "metric_no_data")
        #expect(attempts.last?.measurement?.value == nil)
        #expect(attempts.last?.detail == "no data: the query returned nothing: failed (failures 1, limit 0)")
    }

    @Test func anUnreachablePrometheusIsCountedAsErrorsUpToTheLimit() async throws {
        let port = try LoopbackServer.closedPort()
        let (healthy, attempts) = await waitUntilHealthy(
            check("http://127.0.0.1:\(port)", consecutiveErrorLimit: 2), host: "h1", deadline: .seconds(10))
        #expect(!healthy)
        #expect(attempts.map { $0.measurement?.verdict } == [.error, .error, .error])
        #expect(attempts.map { $0.measurement?.consecutiveErrors } == [1, 2, 3])
        #expect(attempts.map { $0.measurement?.code } == [nil, nil, "metric_check_errors"])
        #expect(attempts.last?.detail.hasPrefix("error: Prometheus at http://127.0.0.1:\(port): connection refused") == true)
    }

    @Test func aQueryPrometheusRefusesIsAnError() async throws {
        let prometheus = try PrometheusServer.shared()
        let (healthy, attempts) = await waitUntilHealthy(
            check(prometheus.url, query: "sum(rate(", consecutiveErrorLimit: 0), host: "h1")
        #expect(!healthy)
        #expect(attempts.count == 1)
        #expect(attempts.last?.measurement?.code == "metric_check_errors")
        #expect(attempts.last?.detail.contains("bad_data") == true, "\(attempts.map(\.detail))")
    }

    @Test func theWindowIsPutIntoTheQueryAsked() async throws {
        let prometheus = try await Services.get().prometheus
        // Without the substitution Prometheus refuses `[{{window}}]` (an error, no value).
        let windowed = Self.errorRatio.replacing("[2s]", with: "[{{window}}]")
        let gate = HealthCheck.prometheus(
            MetricCheck(server: prometheus.url, query: windowed, max: 0.05, window: .seconds(2)))
        let (healthy, attempts) = await waitUntilHealthy(gate, host: "metric-erroring")
        #expect(!healthy)
        let measurement = try #require(attempts.last?.measurement)
        #expect(measurement.verdict == .failed, "\(attempts.map(\.detail))")
        #expect(measurement.value == 1)
        #expect(measurement.query == Self.errorRatio.replacing("{{host}}", with: "metric-erroring"))
        #expect(measurement.query?.contains("{{window}}") == false)
    }

    @Test func theFirst200MeasurementsOfAStageAreEventsAndTheOneThatEndsIt() {
        func attempt(_ number: Int, code: String? = nil) -> HealthAttempt {
            HealthAttempt(
                stage: "baking", release: "r1", check: "prometheus q (max 1)", time: Date(), durationMilliseconds: 3,
                passed: code == nil, detail: "value 0 within max 1: successful",
                measurement: MetricMeasurement(
                    verdict: code == nil ? .successful : .failed, value: 0, bounds: "max 1", number: number, failures: 0,
                    consecutiveErrors: 0, inconclusive: 0, code: code))
        }
        #expect(attempt(1).measurementEvent == "metric (baking) prometheus q (max 1): value 0 within max 1: successful")
        #expect(attempt(200).measurementEvent?.hasSuffix("(later measurements of this stage are in the record's health attempts only)") == true)
        #expect(attempt(201).measurementEvent == nil)
        #expect(attempt(5000, code: "metric_check_failed").measurementEvent != nil)
        let http = HealthAttempt(
            stage: "baking", release: "r1", check: "http", time: Date(), durationMilliseconds: 1, passed: true, detail: "status 200")
        #expect(http.measurementEvent == nil)
    }

    @Test func namesThatCouldLeaveAStringLiteralAreNotSubstituted() {
        let check = MetricCheck(server: "http://127.0.0.1:9090", query: "up{host=\"{{host}}\",release=\"{{release}}\"}", max: 1)
        #expect(check.expandedQuery(host: "web-1.example", release: "v2") == "up{host=\"web-1.example\",release=\"v2\"}")
        #expect(check.expandedQuery(host: "a\"} or vector(0) #", release: "v2") == nil)
        #expect(check.expandedQuery(host: "h", release: "v2\\") == nil)
        #expect(PrometheusQuery.percentEncoded("a b{c=\"d\"}") == "a%20b%7Bc%3D%22d%22%7D")
    }

    // MARK: On the host: the deployment rolls back

    /// v1 live with a plain health check; v2 carries the metric gate and a bake.
    /// `bakeFlag`: a file the activate hook's watcher creates once the record says the
    /// bake has begun (it gives up after 20 s so that it cannot outlive a failed test).
    func deployV2(
        host: String, prometheus: String, bake: BatonDuration, bakeFlag: String? = nil, checks: [HealthCheck]? = nil,
        interval: BatonDuration = BatonDuration(milliseconds: 300)
    ) async throws -> (AgentFixture, DeploymentRecord) {
        let fixture = try AgentFixture(hostID: host)
        let eventLog = fixture.layout.deploymentEvents("$BATON_DEPLOYMENT_ID")
        let activate = bakeFlag.map { flag in
            Hook(command: .shell("""
                (for i in $(seq 400); do grep -Eq '"phase" *: *"baking"' "\(eventLog)" 2>/dev/null && break; sleep 0.05; done; \
                touch \(flag)) >/dev/null 2>&1 &
                """))
        }
        let engine = try fixture.engine()
        let v1 = try fixture.artifact("v1")
        let v1Record = try await engine.deploy(try fixture.envelope("v1", artifact: v1), artifact: v1.path)
        #expect(v1Record.phase == .succeeded)
        let v2 = try fixture.artifact("v2")
        let policy = HealthPolicy(
            checks: checks ?? [check(prometheus)], timeout: .seconds(2), interval: interval, deadline: .seconds(10))
        let record = try await engine.deploy(
            try fixture.envelope("v2", artifact: v2, hooks: activate.map { Hooks(activate: $0) }, health: policy, bake: bake),
            artifact: v2.path)
        return (fixture, record)
    }

    @Test func anErroringReleaseIsRolledBackWithTheMetricCode() async throws {
        let prometheus = try await Services.get().prometheus
        let (fixture, record) = try await deployV2(host: "metric-erroring", prometheus: prometheus.url, bake: .seconds(1))
        defer { fixture.remove() }
        #expect(record.phase == .rolledBack)
        #expect(record.error?.code == "metric_check_failed")
        #expect(record.error?.message.contains("value 1 outside max 0.05") == true, "\(record.error?.message ?? "")")
        #expect(fixture.current() == "v1")
        // The measurement is in the record, with its value, bounds and verdict.
        let measured = try #require(record.healthAttempts.first { $0.stage == "checking" })
        #expect(measured.measurement == MetricMeasurement(
            verdict: .failed, value: 1, bounds: "max 0.05", number: 1, failures: 1, consecutiveErrors: 0, inconclusive: 0,
            code: "metric_check_failed", query: Self.errorRatio.replacing("{{host}}", with: "metric-erroring")))
        // And in its events, which the controller streams and `baton logs` prints.
        #expect(record.events.contains { $0.message.hasPrefix("metric (checking) prometheus ") && $0.message.hasSuffix("value 1 outside max 0.05: failed (failures 1, limit 0)") },
                "\(record.events.map(\.message))")
    }

    @Test func aCheckWithItsOwnIntervalIsMeasuredAtMostThatOftenWhileOtherChecksKeepHealthInterval() async throws {
        let prometheus = try await Services.get().prometheus
        // A bake of 5 s attempted every 500 ms: about 10 attempts. The metric gate's own
        // interval of 2 s measures it at 0.5 s, 2.5 s and 4.5 s; the tcp check every time.
        let gate = HealthCheck.prometheus(
            MetricCheck(server: prometheus.url, query: Self.errorRatio, max: 0.05, interval: .seconds(2)))
        let tcp = HealthCheck.tcp(host: "127.0.0.1", port: prometheus.port)
        let (fixture, record) = try await deployV2(
            host: "metric-healthy", prometheus: prometheus.url, bake: .seconds(5), checks: [gate, tcp],
            interval: BatonDuration(milliseconds: 500))
        defer { fixture.remove() }
        #expect(record.phase == .succeeded, "\(record.events.map(\.message))")
        let measured = record.events.filter { $0.message.hasPrefix("metric (baking) prometheus ") }
        #expect((2...4).contains(measured.count), "\(measured.map(\.message))")
        let baking = record.healthAttempts.filter { $0.stage == "baking" }
        #expect(baking.filter { $0.measurement != nil }.count == measured.count)
        let probed = baking.filter { $0.check.hasPrefix("tcp ") }.count
        #expect(probed >= 8, "the tcp check keeps health.interval: \(probed) attempts")
        // Each measured one a number in the stage: 1, 2, 3 …
        #expect(baking.compactMap { $0.measurement?.number } == Array(1...measured.count))
    }

    @Test func aServiceThatStartsFailingDuringTheBakeIsRolledBack() async throws {
        let services = try await Services.get()
        let (prometheus, service) = (services.prometheus, services.bake)
        let marker = try TemporaryDirectory(prefix: "baton-bake-marker")
        defer { marker.remove() }
        // Healthy through `checking`; the test makes the service fail once the bake began.
        let flag = marker.child("baking")
        let flip = Task {
            for _ in 0..<400 where !FileManager.default.fileExists(atPath: flag) {
                try await Task.sleep(for: .milliseconds(50))
            }
            service.mode = .erroring
        }
        let (fixture, record) = try await deployV2(
            host: "metric-bake", prometheus: prometheus.url, bake: .seconds(20), bakeFlag: flag)
        defer { fixture.remove() }
        flip.cancel()
        #expect(record.phase == .rolledBack, "\(record.events.map(\.message))")
        #expect(record.error?.code == "metric_check_failed")
        #expect(record.healthAttempts.contains { $0.stage == "checking" && $0.measurement?.verdict == .successful })
        let failed = try #require(record.healthAttempts.last { $0.stage == "baking" })
        #expect(failed.measurement?.verdict == .failed)
        #expect(fixture.current() == "v1")
        // The bake ended at the failure, long before its 20 s.
        let baking = try #require(record.timings.first { $0.phase == .baking })
        #expect((baking.endedAt ?? .distantFuture).timeIntervalSince(baking.startedAt) < 15)
    }
}
