import BatonProtocol
import Foundation

/// Runs a canary analysis: asks Prometheus for each canary and baseline host's value now
/// (and, for the Mann-Whitney test, their samples over the window), every host at once,
/// then lets `CanaryJudge` decide. Never throws: a query that cannot be answered makes the
/// analysis inconclusive, for a person to decide.
public struct CanaryAnalyzer: Sendable {
    public let analysis: CanaryAnalysis

    public init(analysis: CanaryAnalysis) { self.analysis = analysis }

    /// What one host's queries gave.
    struct HostMeasurement: Sendable {
        var host: String
        var isCanary: Bool
        /// nil: no data.
        var value: Double?
        var samples: [Double] = []
        /// Queries that could not be answered; the host is then left out.
        var errors: [String] = []
    }

    /// `canary`, `baseline`: host → the release it runs (for `{{release}}`).
    public func run(canary: [String: String?], baseline: [String: String?], now: Date = Date()) async -> CanaryAnalysisReport {
        let hosts = canary.map { ($0.key, $0.value, true) } + baseline.map { ($0.key, $0.value, false) }
        let measured = await withTaskGroup(of: HostMeasurement.self) { group in
            for (host, release, isCanary) in hosts {
                group.addTask { await measure(host: host, release: release, isCanary: isCanary, now: now) }
            }
            var all: [HostMeasurement] = []
            for await one in group { all.append(one) }
            return all.sorted { $0.host < $1.host }
        }
        var input = CanaryJudge.Measured(canary: [:], baseline: [:])
        for one in measured {
            input.errors += one.errors
            // A host whose query could not be answered is left out: that is inconclusive
            // (an error), not a canary without data.
            guard one.errors.isEmpty else { continue }
            if one.isCanary {
                input.canary[one.host] = .some(one.value)
                input.canarySamples += one.samples
            } else {
                input.baseline[one.host] = .some(one.value)
                input.baselineSamples += one.samples
            }
        }
        return CanaryJudge.judge(analysis, input)
    }

    /// One host's value now and, for the Mann-Whitney test, its samples of the window.
    func measure(host: String, release: String?, isCanary: Bool, now: Date) async -> HostMeasurement {
        var result = HostMeasurement(host: host, isCanary: isCanary)
        guard let query = analysis.expandedQuery(host: host, release: release) else {
            result.errors.append("host \(host) or its release cannot be put into PromQL")
            return result
        }
        let api = PrometheusAPI(server: analysis.server, timeout: analysis.effectiveTimeout)
        do {
            // Several series: the worst (highest) one stands for the host.
            result.value = try await api.instant(query, at: now).filter { !$0.isNaN }.max()
        } catch {
            result.errors.append(error.description)
            return result
        }
        if let options = analysis.mannWhitney {
            do {
                result.samples = try await api.range(
                    query, start: now.addingTimeInterval(-options.effectiveWindow.seconds), end: now, step: options.effectiveStep)
            } catch {
                result.errors.append(error.description)
            }
        }
        return result
    }
}
