import BatonProtocol
import Foundation

/// What a canary analysis decided, and the numbers it decided on: recorded as the
/// rollout's `analysis` event, printed by `baton history show`.
public struct CanaryAnalysisReport: Sendable, Equatable, Codable {
    public enum Verdict: String, Sendable, Codable {
        case pass, fail, inconclusive
    }

    public var verdict: Verdict
    /// Means over the hosts that answered; nil when none did.
    public var canary: Double?
    public var baseline: Double?
    public var ratio: Double?
    public var difference: Double?
    public var mannWhitneyP: Double?
    public var canaryHosts: [String]
    public var baselineHosts: [String]
    /// Why, one reason per bound or problem, worst first.
    public var reasons: [String]

    /// `fail: canary 1 vs baseline 0 (1 canary, 2 baseline hosts); difference 1 over failDifference 0.05`.
    public var summary: String {
        func number(_ value: Double?) -> String { value.map(MetricMeasurement.format) ?? "no data" }
        var text = "\(verdict.rawValue): canary \(number(canary)) vs baseline \(number(baseline))"
            + " (\(canaryHosts.count) canary, \(baselineHosts.count) baseline host(s))"
        if !reasons.isEmpty { text += "; " + reasons.joined(separator: "; ") }
        return text
    }
}

/// The decision from the values, with no I/O: what `CanaryAnalyzer` asked Prometheus,
/// judged against the analysis's bounds. The worst verdict of all bounds wins.
public enum CanaryJudge {
    /// What was measured. A host's value is nil when its query returned no data; `errors`
    /// are queries that could not be answered at all.
    public struct Measured: Sendable, Equatable {
        public var canary: [String: Double?]
        public var baseline: [String: Double?]
        public var canarySamples: [Double] = []
        public var baselineSamples: [Double] = []
        public var errors: [String] = []

        public init(canary: [String: Double?], baseline: [String: Double?], canarySamples: [Double] = [],
                    baselineSamples: [Double] = [], errors: [String] = []) {
            self.canary = canary
            self.baseline = baseline
            self.canarySamples = canarySamples
            self.baselineSamples = baselineSamples
            self.errors = errors
        }
    }

    public static func judge(_ analysis: CanaryAnalysis, _ measured: Measured) -> CanaryAnalysisReport {
        var report = CanaryAnalysisReport(
            verdict: .pass, canary: nil, baseline: nil, ratio: nil, difference: nil, mannWhitneyP: nil,
            canaryHosts: measured.canary.keys.sorted(), baselineHosts: measured.baseline.keys.sorted(), reasons: [])
        var verdicts: [(CanaryAnalysisReport.Verdict, String)] = []
        func mean(_ values: [String: Double?]) -> Double? {
            let present = values.values.compactMap { $0 }.filter { !$0.isNaN }
            return present.isEmpty ? nil : present.reduce(0, +) / Double(present.count)
        }
        report.canary = mean(measured.canary)
        report.baseline = mean(measured.baseline)
        for error in measured.errors { verdicts.append((.inconclusive, error)) }
        // No data from a canary is a failure, never a pass.
        let silent = measured.canary.filter { $0.value == nil || $0.value!.isNaN }.keys.sorted()
        if !silent.isEmpty { verdicts.append((.fail, "no data from canary host(s) \(silent.joined(separator: ", "))")) }
        if measured.baseline.isEmpty {
            verdicts.append((.inconclusive, "no host is left on the old release to compare with"))
        } else if report.baseline == nil {
            verdicts.append((.inconclusive, "no data from the baseline"))
        }
        if let canary = report.canary, let baseline = report.baseline {
            let difference = canary - baseline
            report.difference = difference
            let ratio = baseline > 0 ? canary / baseline : (canary > 0 ? Double.infinity : 1)
            report.ratio = ratio.isFinite ? ratio : nil
            if let max = analysis.maxDifference {
                verdicts.append(bound("difference", difference, max: max, fail: analysis.failDifference ?? max, fmax: "maxDifference", ffail: "failDifference"))
            }
            if let max = analysis.maxRatio {
                verdicts.append(bound("ratio", ratio, max: max, fail: analysis.failRatio ?? max, fmax: "maxRatio", ffail: "failRatio"))
            }
        }
        if let options = analysis.mannWhitney {
            let alpha = options.effectiveAlpha
            if measured.canarySamples.count < 3 || measured.baselineSamples.count < 3 {
                verdicts.append((.inconclusive, "Mann-Whitney: \(measured.canarySamples.count) canary and \(measured.baselineSamples.count) baseline sample(s), 3 each needed"))
            } else if let test = MannWhitney.greater(measured.canarySamples, than: measured.baselineSamples) {
                report.mannWhitneyP = test.p
                let p = String(format: "%.4g", test.p)
                if test.p < alpha {
                    verdicts.append((.fail, "Mann-Whitney: canary higher than baseline, p \(p) below alpha \(MetricMeasurement.format(alpha)) (\(measured.canarySamples.count) vs \(measured.baselineSamples.count) samples)"))
                } else {
                    verdicts.append((.pass, "Mann-Whitney: p \(p), not below alpha \(MetricMeasurement.format(alpha))"))
                }
            }
        }
        let rank: [CanaryAnalysisReport.Verdict: Int] = [.pass: 0, .inconclusive: 1, .fail: 2]
        let sorted = verdicts.enumerated().sorted { (rank[$0.element.0]!, -$0.offset) > (rank[$1.element.0]!, -$1.offset) }
        report.verdict = sorted.first?.element.0 ?? .pass
        report.reasons = sorted.map(\.element.1)
        return report
    }

    private static func bound(_ name: String, _ value: Double, max: Double, fail: Double, fmax: String, ffail: String)
        -> (CanaryAnalysisReport.Verdict, String)
    {
        let shown = MetricMeasurement.format(value)
        if value <= max { return (.pass, "\(name) \(shown) within \(fmax) \(MetricMeasurement.format(max))") }
        if value > fail { return (.fail, "\(name) \(shown) over \(fail == max ? fmax : ffail) \(MetricMeasurement.format(fail))") }
        return (.inconclusive, "\(name) \(shown) over \(fmax) \(MetricMeasurement.format(max)) but within \(ffail) \(MetricMeasurement.format(fail))")
    }
}
