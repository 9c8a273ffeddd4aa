import BatonProtocol
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Metrics
import Prometheus
import Synchronization

/// What the agent reports to Prometheus, through swift-metrics onto a registry of its
/// own (no global bootstrap: a library never owns the process's metrics system). Served
/// by `MetricsEndpoint` on the separate `metricsListen` address.
///
/// Deployment metrics are derived from the engine's public API (records and events,
/// followed by `DeploymentObserver`); the engine itself reports nothing.
///
/// | metric | labels |
/// | --- | --- |
/// | `baton_agent_info` (1) | `host`, `environment`, `version` |
/// | `baton_deployments_total` | `app`, `result` (terminal phase) |
/// | `baton_deployment_duration_seconds` (histogram) | `app`, `result` |
/// | `baton_deployment_phase_duration_seconds` (histogram) | `app`, `phase` |
/// | `baton_health_check_failures_total` | `app`, `stage` (`checking`, `baking`, `rollback`) |
/// | `baton_app_release_info` (1 for the live release) | `app`, `release` |
/// | `baton_artifact_received_bytes_total` | |
/// | `baton_requests_refused_total` | `code` (the error code answered, or `tls_handshake`) |
/// | `baton_tls_certificate_expiry_timestamp_seconds` | |
/// | `baton_reloads_total` | `what` (`tls`, `trust`), `result` (`ok`, `failed`) |
public final class AgentMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory
    private let artifactBytes: CoreMetrics.Counter
    private let certificateExpiry: CoreMetrics.Gauge
    private let auditIntact: CoreMetrics.Gauge
    private let releases = Mutex<[String: (release: String, gauge: CoreMetrics.Gauge)]>([:])

    public init(hostID: String, environment: String, version: String) {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // Deployments take seconds to many minutes (a bake), not milliseconds.
        let long: [Duration] = [
            .milliseconds(100), .milliseconds(500), .seconds(1), .seconds(2), .seconds(5), .seconds(10), .seconds(30),
            .seconds(60), .seconds(120), .seconds(300), .seconds(600), .seconds(1800),
        ]
        factory.durationHistogramBuckets["baton_deployment_duration_seconds"] = long
        factory.durationHistogramBuckets["baton_deployment_phase_duration_seconds"] = long
        self.factory = factory
        artifactBytes = CoreMetrics.Counter(label: "baton_artifact_received_bytes_total", factory: factory)
        certificateExpiry = CoreMetrics.Gauge(label: "baton_tls_certificate_expiry_timestamp_seconds", factory: factory)
        auditIntact = CoreMetrics.Gauge(label: "baton_audit_chain_intact", factory: factory)
        CoreMetrics.Gauge(
            label: "baton_agent_info",
            dimensions: [("host", hostID), ("environment", environment), ("version", version)], factory: factory
        ).record(1)
    }

    /// The Prometheus text exposition of every metric.
    public func exposition() -> [UInt8] { registry.emitToBuffer() }

    // MARK: Requests

    public func refused(code: String) {
        CoreMetrics.Counter(label: "baton_requests_refused_total", dimensions: [("code", code)], factory: factory).increment()
    }

    public func artifactBytesReceived(_ count: Int) { artifactBytes.increment(by: count) }

    /// 1 while the audit chain is intact, 0 once the agent found it broken.
    public func auditChain(intact: Bool) { auditIntact.record(intact ? 1 : 0) }

    // MARK: Deployments

    /// Counts a deployment that reached a terminal phase, with its phase durations and
    /// failed health-check attempts.
    public func deploymentEnded(_ record: DeploymentRecord) {
        guard record.phase.isTerminal else { return }
        let app = record.app, result = record.phase.rawValue
        CoreMetrics.Counter(label: "baton_deployments_total", dimensions: [("app", app), ("result", result)], factory: factory)
            .increment()
        if let finished = record.finishedAt {
            CoreMetrics.Timer(
                label: "baton_deployment_duration_seconds", dimensions: [("app", app), ("result", result)], factory: factory
            ).recordSeconds(max(0, finished.timeIntervalSince(record.createdAt)))
        }
        for timing in record.timings {
            guard let ended = timing.endedAt else { continue }
            CoreMetrics.Timer(
                label: "baton_deployment_phase_duration_seconds", dimensions: [("app", app), ("phase", timing.phase.rawValue)],
                factory: factory
            ).recordSeconds(max(0, ended.timeIntervalSince(timing.startedAt)))
        }
        var failures: [String: Int] = [:]
        for attempt in record.healthAttempts where !attempt.passed { failures[attempt.stage, default: 0] += 1 }
        for (stage, count) in failures {
            CoreMetrics.Counter(
                label: "baton_health_check_failures_total", dimensions: [("app", app), ("stage", stage)], factory: factory
            ).increment(by: count)
        }
    }

    /// Sets the info metric naming the release `current` points at (none: no series).
    public func currentRelease(app: String, release: String?) {
        releases.withLock { releases in
            if let existing = releases[app], existing.release == release { return }
            releases[app]?.gauge.destroy()
            releases[app] = nil
            guard let release else { return }
            let gauge = CoreMetrics.Gauge(label: "baton_app_release_info", dimensions: [("app", app), ("release", release)], factory: factory)
            gauge.record(1)
            releases[app] = (release, gauge)
        }
    }

    // MARK: The daemon

    public func certificateLoaded(notValidAfter: Date) {
        certificateExpiry.record(notValidAfter.timeIntervalSince1970)
    }

    public func reloaded(_ what: String, ok: Bool) {
        CoreMetrics.Counter(
            label: "baton_reloads_total", dimensions: [("what", what), ("result", ok ? "ok" : "failed")], factory: factory
        ).increment()
    }
}
