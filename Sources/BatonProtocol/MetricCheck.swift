/// A health check that asks a Prometheus server, in the manner of Argo Rollouts'
/// AnalysisTemplate: every attempt runs one instant query and judges its value against
/// bounds. A measurement is `successful` inside `min`...`max`, `failed` beyond
/// `failBelow`/`failAbove` (or anywhere outside the bounds when neither is given),
/// `inconclusive` in between, and an `error` when the server cannot be asked or refuses
/// the query. A query that returns nothing (or NaN) is a failure, never a pass.
/// The counts end the check: more than `failureLimit` failures, more than
/// `inconclusiveLimit` inconclusive results, or more than `consecutiveErrorLimit` errors
/// in a row fail it at once, whatever the deadline or the bake has left.
public struct MetricCheck: Codable, Sendable, Equatable {
    /// `http://host[:port]`: the Prometheus server (its HTTP API under `/api/v1/query`).
    public var server: String
    /// PromQL; `{{host}}` and `{{release}}` are replaced by the agent's host ID and the
    /// release being checked (names of a restricted alphabet: they cannot leave a string
    /// literal), `{{window}}` by `window` (`rate(x[{{window}}])`).
    public var query: String
    /// Success bounds on the value (inclusive); at least one is given.
    public var min: Double?
    public var max: Double?
    /// Failure thresholds: a value outside the success bounds but not beyond these is
    /// inconclusive. Without them every value outside the bounds is a failure.
    public var failBelow: Double?
    public var failAbove: Double?
    /// Successful measurements in a row needed to pass `checking`. Default 1.
    public var count: Int?
    /// Failed measurements tolerated. Default 0.
    public var failureLimit: Int?
    /// Errors in a row tolerated. Default 4 (as Argo).
    public var consecutiveErrorLimit: Int?
    /// Inconclusive measurements tolerated. Default 0.
    public var inconclusiveLimit: Int?
    /// How often this check is measured at most: at an attempt (every `health.interval`)
    /// only once this long has passed since its last measurement in the stage; other
    /// checks keep `health.interval`. Between measurements its last verdict stands.
    /// Default: every attempt.
    public var interval: BatonDuration?
    /// What `{{window}}` in the query becomes, written as PromQL writes durations (`1m`,
    /// `30s`, `1m30s`). A query that says `{{window}}` needs it, and it needs one.
    public var window: BatonDuration?

    public init(
        server: String, query: String, min: Double? = nil, max: Double? = nil, failBelow: Double? = nil,
        failAbove: Double? = nil, count: Int? = nil, failureLimit: Int? = nil, consecutiveErrorLimit: Int? = nil,
        inconclusiveLimit: Int? = nil, interval: BatonDuration? = nil, window: BatonDuration? = nil
    ) {
        self.server = server
        self.query = query
        self.min = min
        self.max = max
        self.failBelow = failBelow
        self.failAbove = failAbove
        self.count = count
        self.failureLimit = failureLimit
        self.consecutiveErrorLimit = consecutiveErrorLimit
        self.inconclusiveLimit = inconclusiveLimit
        self.interval = interval
        self.window = window
    }

    /// The placeholder `window` replaces.
    public static let windowPlaceholder = "{{window}}"

    public var effectiveCount: Int { count ?? 1 }
    public var effectiveFailureLimit: Int { failureLimit ?? 0 }
    public var effectiveConsecutiveErrorLimit: Int { consecutiveErrorLimit ?? 4 }
    public var effectiveInconclusiveLimit: Int { inconclusiveLimit ?? 0 }

    /// The verdict on one value (NaN is no data: a failure).
    public func judge(_ value: Double) -> MetricMeasurement.Verdict {
        if value.isNaN { return .failed }
        if (min.map { value >= $0 } ?? true) && (max.map { value <= $0 } ?? true) { return .successful }
        if failBelow == nil && failAbove == nil { return .failed }
        if let failBelow, value < failBelow { return .failed }
        if let failAbove, value > failAbove { return .failed }
        return .inconclusive
    }

    /// `min 0, max 0.05` (and the failure thresholds when given).
    public var bounds: String {
        var parts: [String] = []
        if let min { parts.append("min \(MetricMeasurement.format(min))") }
        if let max { parts.append("max \(MetricMeasurement.format(max))") }
        if let failBelow { parts.append("failBelow \(MetricMeasurement.format(failBelow))") }
        if let failAbove { parts.append("failAbove \(MetricMeasurement.format(failAbove))") }
        return parts.joined(separator: ", ")
    }

    /// Replaces `{{host}}`, `{{release}}` and `{{window}}` (by `window`); nil when a name
    /// has a character outside `[A-Za-z0-9._:@+-]`, which could end a PromQL string literal
    /// or a regex.
    public func expandedQuery(host: String, release: String) -> String? {
        Self.expand(query, host: host, release: release, window: window)
    }

    /// `query` with `{{host}}` and `{{release}}` replaced (and `{{window}}`, when a window
    /// is given), or nil (see `expandedQuery`).
    public static func expand(_ query: String, host: String, release: String, window: BatonDuration? = nil) -> String? {
        for value in [host, release] where !isPlain(value) { return nil }
        var expanded = query.replacing("{{host}}", with: host).replacing("{{release}}", with: release)
        if let window { expanded = expanded.replacing(windowPlaceholder, with: window.description) }
        return expanded
    }

    static func isPlain(_ value: String) -> Bool {
        !value.isEmpty && value.unicodeScalars.allSatisfy { s in
            (s.value < 0x80) && (s.properties.isAlphabetic || ("0"..."9").contains(s) || "._:@+-".unicodeScalars.contains(s))
        }
    }

    func problems(field: String) -> [String] {
        var problems: [String] = []
        if !server.hasPrefix("http://") || server.utf8.count > ManifestLimits.maxURLBytes
            || server.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F || $0 == "?" || $0 == "#" })
        {
            problems.append("\(field).server must be an http:// URL without a query")
        }
        if query.allSatisfy(\.isWhitespace) || query.utf8.count > ManifestLimits.maxQueryBytes || query.utf8.contains(0) {
            problems.append("\(field).query must be PromQL of at most \(ManifestLimits.maxQueryBytes) bytes")
        }
        if min == nil && max == nil { problems.append("\(field) needs a success bound: min, max or both") }
        for (name, value) in [("min", min), ("max", max), ("failBelow", failBelow), ("failAbove", failAbove)] {
            if let value, !value.isFinite { problems.append("\(field).\(name) must be a finite number") }
        }
        if let min, let max, min > max { problems.append("\(field).min must not exceed max") }
        if let failAbove, failAbove < (max ?? -.infinity) { problems.append("\(field).failAbove must be at least max") }
        if let failBelow, failBelow > (min ?? .infinity) { problems.append("\(field).failBelow must be at most min") }
        if failAbove != nil && max == nil { problems.append("\(field).failAbove needs max") }
        if failBelow != nil && min == nil { problems.append("\(field).failBelow needs min") }
        for (name, value) in [
            ("failureLimit", failureLimit), ("consecutiveErrorLimit", consecutiveErrorLimit),
            ("inconclusiveLimit", inconclusiveLimit),
        ] {
            if let value, !ManifestLimits.metricLimit.contains(value) {
                problems.append("\(field).\(name) \(value) is out of bounds (0 to 100)")
            }
        }
        if let count, !(1...100).contains(count) { problems.append("\(field).count \(count) is out of bounds (1 to 100)") }
        if let interval, !ManifestLimits.metricInterval.contains(interval) {
            problems.append("\(field).interval \(interval) is out of bounds (1s to 1h)")
        }
        let usesWindow = query.contains(Self.windowPlaceholder)
        if let window {
            if !ManifestLimits.metricWindow.contains(window) {
                problems.append("\(field).window \(window) is out of bounds (1s to 720h)")
            }
            if !usesWindow { problems.append("\(field).window is given but the query does not use {{window}}") }
        } else if usesWindow {
            problems.append("\(field).query uses {{window}} but the check gives no window (e.g. window: 1m)")
        }
        return problems
    }
}

/// One measurement of a `prometheus` check, as recorded in a health attempt.
public struct MetricMeasurement: Codable, Sendable, Equatable {
    public enum Verdict: String, Codable, Sendable {
        case successful, failed, inconclusive, error
    }

    public var verdict: Verdict
    /// The value judged (the worst of several series); nil on an error, on no data, and
    /// for a value JSON cannot carry (±Inf: `detail` says it).
    public var value: Double?
    /// The bounds it was judged against, e.g. `max 0.05`.
    public var bounds: String
    /// Its place among the check's measurements in this stage, from 1.
    public var number: Int
    /// Counts so far in this stage.
    public var failures: Int
    public var consecutiveErrors: Int
    public var inconclusive: Int
    /// Set on the measurement that ended the check: `metric_check_failed`,
    /// `metric_no_data`, `metric_check_errors` or `metric_check_inconclusive`.
    public var code: String?
    /// The query as asked, its placeholders replaced (`{{host}}`, `{{release}}`,
    /// `{{window}}`); absent when a name could not be put into PromQL.
    public var query: String?

    public init(
        verdict: Verdict, value: Double?, bounds: String, number: Int, failures: Int, consecutiveErrors: Int,
        inconclusive: Int, code: String? = nil, query: String? = nil
    ) {
        self.verdict = verdict
        self.number = number
        self.value = value
        self.bounds = bounds
        self.failures = failures
        self.consecutiveErrors = consecutiveErrors
        self.inconclusive = inconclusive
        self.code = code
        self.query = query
    }

    /// A number as people write it: `0.05`, `3`, `+Inf`.
    public static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        // Six decimals are plenty for a reader; smaller values keep their own digits.
        if abs(value) >= 0.0001, abs(value) < 1e9 {
            let rounded = (value * 1_000_000).rounded() / 1_000_000
            if rounded == rounded.rounded() { return String(Int64(rounded)) }
            return "\(rounded)"
        }
        return "\(value)"
    }
}
