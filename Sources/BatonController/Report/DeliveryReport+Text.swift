import BatonProtocol
import Foundation

extension DeliveryReport {
    /// The table `baton report` prints: a header, then one line per app and environment.
    public func lines(now: Date = Date()) -> [String] {
        var lines = [
            "delivery from \(RFC3339.format(since)) to \(RFC3339.format(until))",
            Self.columns([
                ("APP", 12), ("ENV", 12), ("DEPLOYS", 8), ("PER WEEK", 9), ("LEAD TIME", 10), ("CHANGE FAIL", 12),
                ("RESTORE", 12), ("REWORK", 11), ("LAST DRILL", 0),
            ]),
        ]
        for row in rows {
            var drill = row.lastSuccessfulDrill.map { last in
                "\(Self.duration(now.timeIntervalSince(last))) ago\(row.drillTimeToRecover.map { ", recovered in \(Self.duration($0))" } ?? "")"
            } ?? "never"
            // A later drill that did not succeed is news too.
            if let outcome = row.lastDrillOutcome, outcome != .succeeded { drill += "; the last drill \(outcome.rawValue)" }
            let restore = row.timeToRestore.map(Self.duration) ?? "-"
            lines.append(Self.columns([
                (row.app, 12), (row.environment, 12), ("\(row.deployments)", 8), (String(format: "%.1f", row.deploymentsPerWeek), 9),
                (row.leadTime.map(Self.duration) ?? "-", 10),
                (Self.rate(row.changeFailureRate, row.changeFailures, row.deployments), 12),
                (row.unrestored > 0 ? "\(restore) +\(row.unrestored) open" : restore, 12),
                (Self.rate(row.reworkRate, row.rework, row.deployments + row.rollbacks), 11), (drill, 0),
            ]))
        }
        return lines
    }

    static func columns(_ cells: [(String, Int)]) -> String {
        cells.map { text, width in text.count >= width ? text : text + String(repeating: " ", count: width - text.count) }
            .joined(separator: " ").trimmingCharacters(in: .whitespaces)
    }

    /// `25% (1/4)`, or `-` without a denominator.
    static func rate(_ rate: Double?, _ count: Int, _ of: Int) -> String {
        guard let rate else { return "-" }
        return "\(Int((rate * 100).rounded()))% (\(count)/\(of))"
    }

    /// `4.2s`, `3m 10s`, `2h 5m`, `3d 4h`.
    public static func duration(_ seconds: Double) -> String {
        let seconds = max(0, seconds)
        if seconds < 60 { return String(format: "%.1fs", seconds) }
        let whole = Int(seconds.rounded())
        if whole < 3600 { return "\(whole / 60)m \(whole % 60)s" }
        if whole < 86_400 { return "\(whole / 3600)h \((whole % 3600) / 60)m" }
        return "\(whole / 86_400)d \((whole % 86_400) / 3600)h"
    }
}
