import BatonProtocol
import Foundation

/// Runs a canary analysis: asks Prometheus for each canary and baseline host's value now
/// (and, for the Mann-Whitney test, their samples over the window), then lets
/// `CanaryJudge` decide. Never throws: a query that cannot be answered makes the
/// analysis inconclusive, for a person to decide.
public struct CanaryAnalyzer: Sendable {
    public let analysis: CanaryAnalysis

    public init(analysis: CanaryAnalysis) { self.analysis = analysis }

    /// `canary`, `baseline`: host → the release it runs (for `{{release}}`).
    public func run(canary: [String: String?], baseline: [String: String?], now: Date = Date()) async -> CanaryAnalysisReport {
        let api = PrometheusAPI(server: analysis.server, timeout: analysis.effectiveTimeout)
        var measured = CanaryJudge.Measured(canary: [:], baseline: [:])
        for (side, hosts) in [(true, canary), (false, baseline)] {
            for (host, release) in hosts.sorted(by: { $0.key < $1.key }) {
                guard let query = analysis.expandedQuery(host: host, release: release) else {
                    measured.errors.append("host \(host) or its release cannot be put into PromQL")
                    continue
                }
                var value: Double?
                do {
                    // Several series: the worst (highest) one stands for the host.
                    value = try await api.instant(query, at: now).filter { !$0.isNaN }.max()
                } catch {
                    measured.errors.append(error.description)
                    continue
                }
                if side { measured.canary[host] = .some(value) } else { measured.baseline[host] = .some(value) }
                if let options = analysis.mannWhitney {
                    do {
                        let samples = try await api.range(
                            query, start: now.addingTimeInterval(-options.effectiveWindow.seconds), end: now,
                            step: options.effectiveStep)
                        if side { measured.canarySamples += samples } else { measured.baselineSamples += samples }
                    } catch {
                        measured.errors.append(error.description)
                    }
                }
            }
        }
        // A host whose query could not be answered is left out: that is inconclusive
        // (an error), not a canary without data.
        return CanaryJudge.judge(analysis, measured)
    }
}
