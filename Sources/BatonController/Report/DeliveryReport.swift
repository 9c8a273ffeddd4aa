import Foundation

/// Delivery metrics per app and environment over a window, computed from the history alone
/// (`baton report`). Pure: records in, numbers out; the README defines each one.
///
/// * A **deployment** is a rollout of kind `rollout` that ended (not running, not paused).
///   Rollbacks are not deployments but rework; a drill's legs count for nothing here.
/// * **Deployment frequency**: succeeded deployments per week of the window.
/// * **Lead time**: from the release's creation (its manifest's `issuedAt`) to the end of
///   its succeeded deployment; the median.
/// * **Change failure rate**: the share of deployments that failed (outcome `failed`,
///   `needs_attention` or `aborted`) or that a `baton rollback` undid before the next
///   deployment of the app in the environment.
/// * **Time to restore**: from a failure (a failed deployment's end, or the start of the
///   rollback that undid a deployment) to the end of the next succeeded rollout or rollback;
///   the median. A failure nothing has restored yet counts in `unrestored`.
/// * **Rework rate**: the share of rollouts and rollbacks that were rework: a rollback, or a
///   deployment started within ``reworkWindow`` of a failure (a fix or a retry).
public struct DeliveryReport: Codable, Sendable, Equatable {
    /// How soon after a failure a deployment counts as rework.
    public static let reworkWindow: TimeInterval = 24 * 3600

    public struct Row: Codable, Sendable, Equatable {
        public var app: String
        public var environment: String
        public var deployments: Int
        public var succeeded: Int
        /// Succeeded deployments per week of the window.
        public var deploymentsPerWeek: Double
        /// Median seconds from release creation to a succeeded deployment; nil without any
        /// deployment whose creation time is known.
        public var leadTime: Double?
        public var changeFailures: Int
        /// `changeFailures / deployments`; nil without deployments.
        public var changeFailureRate: Double?
        /// Median seconds from a failure to the next healthy rollout; nil without a restored failure.
        public var timeToRestore: Double?
        public var restored: Int
        public var unrestored: Int
        public var rollbacks: Int
        public var rework: Int
        /// `rework / (deployments + rollbacks)`; nil without either.
        public var reworkRate: Double?
        public var drills: Int
        public var drillsSucceeded: Int
        public var lastSuccessfulDrill: Date?
        /// Seconds the last successful drill took to be healthy on the previous release.
        public var drillTimeToRecover: Double?
        /// The newest drill started before the window's end, however it ended, and why it
        /// did not succeed.
        public var lastDrillID: String?
        public var lastDrillOutcome: DrillRecord.Outcome?
        public var lastDrillReason: String?
    }

    public var since: Date
    public var until: Date
    public var rows: [Row]

    /// The report of every app and environment with a rollout, rollback or drill started in
    /// `since..<until`. Failures are matched to restores among all of `rollouts`, so a
    /// failure at the end of the window restored after it counts as restored when the
    /// history holds that restore.
    public static func make(rollouts: [RolloutRecord], drills: [DrillRecord], since: Date, until: Date) -> DeliveryReport {
        struct Key: Hashable, Comparable {
            var app: String
            var environment: String
            static func < (a: Key, b: Key) -> Bool { (a.app, a.environment) < (b.app, b.environment) }
        }
        let byKey = Dictionary(grouping: rollouts.filter { $0.kind != .drill }) { Key(app: $0.app, environment: $0.environment) }
        let drillsByKey = Dictionary(grouping: drills) { Key(app: $0.app, environment: $0.environment) }
        var keys = Set(byKey.filter { $0.value.contains { within($0.startedAt, since, until) } }.keys)
        keys.formUnion(drillsByKey.filter { $0.value.contains { within($0.startedAt, since, until) } }.keys)
        let rows = keys.sorted().map { key in
            row(app: key.app, environment: key.environment, rollouts: byKey[key] ?? [], drills: drillsByKey[key] ?? [],
                since: since, until: until)
        }
        return DeliveryReport(since: since, until: until, rows: rows)
    }

    static func within(_ date: Date, _ since: Date, _ until: Date) -> Bool { since <= date && date < until }

    static func isFailure(_ outcome: RolloutOutcome?) -> Bool {
        outcome == .failed || outcome == .needsAttention || outcome == .aborted
    }

    /// One app in one environment: `rollouts` are all of its rollouts and rollbacks.
    static func row(app: String, environment: String, rollouts: [RolloutRecord], drills: [DrillRecord], since: Date, until: Date) -> Row {
        let ordered = rollouts.sorted { ($0.startedAt, $0.id) < ($1.startedAt, $1.id) }
        let ended = ordered.filter { $0.outcome != nil && $0.outcome != .paused }

        // Each failure: when it began, whether it lies in the window.
        var failures: [(rollout: RolloutRecord, at: Date)] = []
        for (index, rollout) in ended.enumerated() where rollout.kind == .rollout {
            if isFailure(rollout.outcome) {
                failures.append((rollout, rollout.finishedAt ?? rollout.startedAt))
            } else if rollout.outcome == .succeeded,
                      let undo = ended[(index + 1)...].prefix(while: { $0.kind != .rollout }).first(where: { $0.kind == .rollback }) {
                failures.append((rollout, undo.startedAt))
            }
        }

        let deployments = ended.filter { $0.kind == .rollout && within($0.startedAt, since, until) }
        let succeeded = deployments.filter { $0.outcome == .succeeded }
        let rollbacks = ended.filter { $0.kind == .rollback && within($0.startedAt, since, until) }
        let weeks = max(until.timeIntervalSince(since), 1) / (7 * 24 * 3600)
        let leadTimes = succeeded.compactMap { rollout in
            rollout.issuedAt.map { (rollout.finishedAt ?? rollout.startedAt).timeIntervalSince($0) }
        }
        let windowFailures = failures.filter { failure in deployments.contains { $0.id == failure.rollout.id } }

        var restoreTimes: [Double] = []
        var unrestored = 0
        for failure in windowFailures {
            let restore = ended.first { candidate in
                candidate.outcome == .succeeded && (candidate.finishedAt ?? candidate.startedAt) > failure.at
                    && candidate.startedAt >= failure.rollout.startedAt && candidate.id != failure.rollout.id
            }
            if let restore {
                restoreTimes.append((restore.finishedAt ?? restore.startedAt).timeIntervalSince(failure.at))
            } else {
                unrestored += 1
            }
        }

        let failureTimes = failures.map(\.at)
        let redeploys = deployments.filter { deployment in
            failureTimes.contains { deployment.startedAt > $0 && deployment.startedAt.timeIntervalSince($0) <= reworkWindow }
        }
        let changes = deployments.count + rollbacks.count

        let windowDrills = drills.filter { within($0.startedAt, since, until) }
        let lastGood = drills.filter { $0.outcome == .succeeded && $0.startedAt < until }.max { $0.startedAt < $1.startedAt }
        let last = drills.filter { $0.startedAt < until }.max { ($0.startedAt, $0.id) < ($1.startedAt, $1.id) }
        return Row(
            app: app, environment: environment, deployments: deployments.count, succeeded: succeeded.count,
            deploymentsPerWeek: Double(succeeded.count) / weeks, leadTime: median(leadTimes), changeFailures: windowFailures.count,
            changeFailureRate: deployments.isEmpty ? nil : Double(windowFailures.count) / Double(deployments.count),
            timeToRestore: median(restoreTimes), restored: restoreTimes.count, unrestored: unrestored, rollbacks: rollbacks.count,
            rework: rollbacks.count + redeploys.count,
            reworkRate: changes == 0 ? nil : Double(rollbacks.count + redeploys.count) / Double(changes),
            drills: windowDrills.count, drillsSucceeded: windowDrills.filter { $0.outcome == .succeeded }.count,
            lastSuccessfulDrill: lastGood?.finishedAt ?? lastGood?.startedAt, drillTimeToRecover: lastGood?.timeToRecover,
            lastDrillID: last?.id, lastDrillOutcome: last?.outcome, lastDrillReason: last?.reason)
    }

    /// The middle value (the mean of the two middle ones for an even count); nil when empty.
    public static func median(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }
}
