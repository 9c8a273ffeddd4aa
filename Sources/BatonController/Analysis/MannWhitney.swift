import Foundation

/// The Mann-Whitney U test (Wilcoxon rank-sum), as Kayenta's judge uses it to compare a
/// canary's samples with the baseline's without assuming a distribution. One-sided: is the
/// canary's distribution shifted above the baseline's (worse, for an error rate or a
/// latency)? The p-value uses the normal approximation with a correction for ties and
/// for continuity, good from a handful of samples on each side.
public enum MannWhitney {
    public struct Result: Sendable, Equatable {
        /// U of the canary: how often a canary sample exceeds a baseline sample (ties ½).
        public var u: Double
        /// P(U at least this large) if both came from one distribution.
        public var p: Double
    }

    /// nil when either side has no sample.
    public static func greater(_ canary: [Double], than baseline: [Double]) -> Result? {
        let n1 = Double(canary.count), n2 = Double(baseline.count)
        guard n1 > 0, n2 > 0 else { return nil }
        // Ranks over both samples together, ties given their mean rank.
        let all = (canary.map { ($0, true) } + baseline.map { ($0, false) }).sorted { $0.0 < $1.0 }
        var ranks = [Double](repeating: 0, count: all.count)
        var tieTerm = 0.0
        var i = 0
        while i < all.count {
            var j = i
            while j + 1 < all.count && all[j + 1].0 == all[i].0 { j += 1 }
            let rank = Double(i + j + 2) / 2
            for k in i...j { ranks[k] = rank }
            let t = Double(j - i + 1)
            tieTerm += t * t * t - t
            i = j + 1
        }
        let r1 = zip(all, ranks).filter { $0.0.1 }.reduce(0) { $0 + $1.1 }
        let u = r1 - n1 * (n1 + 1) / 2
        let n = n1 + n2
        let mean = n1 * n2 / 2
        let variance = n1 * n2 / 12 * ((n + 1) - tieTerm / (n * (n - 1)))
        guard variance > 0 else { return Result(u: u, p: u > mean ? 0 : 1) }
        let z = (u - mean - 0.5) / variance.squareRoot()
        return Result(u: u, p: 0.5 * erfc(z / 2.0.squareRoot()))
    }
}
