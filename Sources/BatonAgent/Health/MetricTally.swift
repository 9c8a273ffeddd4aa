import BatonProtocol
import Synchronization

/// The counts of every `prometheus` check through one stage (`checking` or `baking`):
/// failures, inconclusive results, errors in a row and successes in a row. Each stage
/// starts from zero; the limits are per stage.
final class MetricTally: Sendable {
    struct Counts: Sendable {
        var failures = 0
        var inconclusive = 0
        var consecutiveErrors = 0
        var consecutiveSuccesses = 0
        var measurements = 0
        /// When (on the health clock) the check was last measured in this stage.
        var measuredAt: Duration?
        /// Whether its last measurement passed: its verdict until the next one.
        var lastPassed = false
    }

    private let counts = Mutex<[Int: Counts]>([:])

    /// Whether the check at `index`, with its own `interval`, is to be measured at the
    /// attempt scheduled for `at`: its first in the stage, or `interval` after the last.
    /// Marks it measured at `at` when it is.
    func isDue(index: Int, at: Duration, interval: BatonDuration) -> Bool {
        counts.withLock { all in
            var c = all[index] ?? Counts()
            if let last = c.measuredAt, at - last < interval.swiftDuration { return false }
            c.measuredAt = at
            all[index] = c
            return true
        }
    }

    /// Whether the last measurement of the check at `index` passed (false before its first).
    func lastPassed(index: Int) -> Bool { counts.withLock { $0[index]?.lastPassed ?? false } }

    func setPassed(index: Int, _ passed: Bool) {
        counts.withLock { all in
            var c = all[index] ?? Counts()
            c.lastPassed = passed
            all[index] = c
        }
    }

    /// Adds a verdict for the check at `index`; the measurement to record, with the code
    /// that ends the check when a limit was passed (`noData`: the failure was an empty
    /// answer).
    func record(
        _ verdict: MetricMeasurement.Verdict, noData: Bool, value: Double?, check: MetricCheck, index: Int
    ) -> (measurement: MetricMeasurement, successesInARow: Int) {
        counts.withLock { all in
            var c = all[index] ?? Counts()
            var code: String?
            c.measurements += 1
            switch verdict {
            case .successful:
                c.consecutiveErrors = 0
                c.consecutiveSuccesses += 1
            case .failed:
                c.failures += 1
                c.consecutiveErrors = 0
                c.consecutiveSuccesses = 0
                if c.failures > check.effectiveFailureLimit { code = noData ? "metric_no_data" : "metric_check_failed" }
            case .inconclusive:
                c.inconclusive += 1
                c.consecutiveErrors = 0
                c.consecutiveSuccesses = 0
                if c.inconclusive > check.effectiveInconclusiveLimit { code = "metric_check_inconclusive" }
            case .error:
                c.consecutiveErrors += 1
                c.consecutiveSuccesses = 0
                if c.consecutiveErrors > check.effectiveConsecutiveErrorLimit { code = "metric_check_errors" }
            }
            all[index] = c
            return (
                MetricMeasurement(
                    verdict: verdict, value: value.flatMap { $0.isFinite ? $0 : nil }, bounds: check.bounds,
                    number: c.measurements, failures: c.failures, consecutiveErrors: c.consecutiveErrors, inconclusive: c.inconclusive,
                    code: code),
                c.consecutiveSuccesses
            )
        }
    }
}
