import BatonProtocol
import Foundation

/// Canary analysis, as Kayenta does it on plain hosts: once the canary wave has baked,
/// the same PromQL query is asked for each canary host and each host still on the old
/// release (the baseline), and the canary's mean is compared with the baseline's:
/// by `ratio` (canary / baseline), by `difference` (canary − baseline), and optionally
/// by a Mann-Whitney U test over the samples of a window. Higher is worse (an error
/// rate, a latency). Each bound has a pass limit (`max…`) and a failure limit (`fail…`,
/// default the pass limit); a value between the two is inconclusive. The worst verdict
/// decides: pass continues the rollout, fail halts and reverts the canary, inconclusive
/// pauses it for a person (`baton rollout resume` or `abort`).
///
/// In the app file:
/// ```yaml
/// analysis:
///   server: http://prometheus.internal:9090
///   query: sum(rate(http_requests_total{host="{{host}}",code=~"5.."}[1m])) / sum(rate(http_requests_total{host="{{host}}"}[1m]))
///   maxDifference: 0.01
///   failDifference: 0.05
///   maxRatio: 2
///   mannWhitney: {window: 5m, step: 15s, alpha: 0.05}
/// ```
public struct CanaryAnalysis: Codable, Sendable, Equatable {
    /// `http://host:port` (or `https://`): the Prometheus server.
    public var server: String
    /// PromQL with `{{host}}` (and `{{release}}`: the host's release) substituted per host,
    /// and `{{window}}` by `window`.
    public var query: String
    /// What `{{window}}` in the query stands for (`rate(x[{{window}}])`), as PromQL writes a
    /// duration; required when the query uses it, refused when it does not, as in a
    /// manifest's metric gate.
    public var window: BatonDuration?
    public var maxRatio: Double?
    public var failRatio: Double?
    public var maxDifference: Double?
    public var failDifference: Double?
    public var mannWhitney: MannWhitneyOptions?
    /// Per query. Default 5s.
    public var timeout: BatonDuration?

    public struct MannWhitneyOptions: Codable, Sendable, Equatable {
        /// How far back the samples go. Default 5m.
        public var window: BatonDuration?
        /// Between samples. Default 15s.
        public var step: BatonDuration?
        /// The significance level: p below it fails the canary. Default 0.05.
        public var alpha: Double?

        public init(window: BatonDuration? = nil, step: BatonDuration? = nil, alpha: Double? = nil) {
            self.window = window
            self.step = step
            self.alpha = alpha
        }

        public var effectiveWindow: BatonDuration { window ?? .minutes(5) }
        public var effectiveStep: BatonDuration { step ?? .seconds(15) }
        public var effectiveAlpha: Double { alpha ?? 0.05 }
    }

    public init(server: String, query: String, maxRatio: Double? = nil, failRatio: Double? = nil,
                maxDifference: Double? = nil, failDifference: Double? = nil, mannWhitney: MannWhitneyOptions? = nil,
                timeout: BatonDuration? = nil, window: BatonDuration? = nil) {
        self.server = server
        self.query = query
        self.maxRatio = maxRatio
        self.failRatio = failRatio
        self.maxDifference = maxDifference
        self.failDifference = failDifference
        self.mannWhitney = mannWhitney
        self.timeout = timeout
        self.window = window
    }

    public var effectiveTimeout: BatonDuration { timeout ?? .seconds(5) }

    /// Every problem with the definition; empty when it is usable.
    public func problems() -> [String] {
        var problems: [String] = []
        if !(server.hasPrefix("http://") || server.hasPrefix("https://")) || URL(string: server)?.host == nil {
            problems.append("analysis.server must be an http:// or https:// URL")
        }
        if query.allSatisfy(\.isWhitespace) { problems.append("analysis.query is empty") }
        let usesWindow = query.contains(MetricCheck.windowPlaceholder)
        if let window {
            if !ManifestLimits.metricWindow.contains(window) { problems.append("analysis.window \(window) is out of bounds (1s to 720h)") }
            if !usesWindow { problems.append("analysis.window is given but the query does not use {{window}}") }
        } else if usesWindow {
            problems.append("analysis.query uses {{window}} but the analysis gives no window (e.g. window: 1m)")
        }
        if maxRatio == nil && maxDifference == nil && mannWhitney == nil {
            problems.append("analysis needs a bound: maxRatio, maxDifference or mannWhitney")
        }
        for (name, value) in [("maxRatio", maxRatio), ("failRatio", failRatio), ("maxDifference", maxDifference),
                              ("failDifference", failDifference)] {
            if let value, !value.isFinite || value < 0 { problems.append("analysis.\(name) must be a number of at least 0") }
        }
        if let failRatio, failRatio < (maxRatio ?? .infinity) { problems.append("analysis.failRatio needs maxRatio and must be at least it") }
        if let failDifference, failDifference < (maxDifference ?? .infinity) {
            problems.append("analysis.failDifference needs maxDifference and must be at least it")
        }
        if let mannWhitney {
            if !(0.0001...0.5).contains(mannWhitney.effectiveAlpha) { problems.append("analysis.mannWhitney.alpha must be within 0.0001 and 0.5") }
            if mannWhitney.effectiveStep.milliseconds < 1000 || mannWhitney.effectiveWindow < mannWhitney.effectiveStep {
                problems.append("analysis.mannWhitney.step must be at least 1s and no longer than window")
            }
        }
        return problems
    }

    /// The query for one host; nil when a name could leave a PromQL string literal.
    func expandedQuery(host: String, release: String?) -> String? {
        MetricCheck.expand(query, host: host, release: release ?? "unknown", window: window)
    }
}
