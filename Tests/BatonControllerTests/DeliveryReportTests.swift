import BatonController
import Foundation
import Testing

/// Delivery metrics over constructed histories: every number is worked out by hand in the
/// comments, so a change of definition shows here.
@Suite("delivery report")
struct DeliveryReportTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    static let hour: TimeInterval = 3600

    static func rollout(
        _ id: String, app: String = "web", environment: String = "production", kind: RolloutKind = .rollout,
        startHours: Double, minutes: Double = 10, outcome: RolloutOutcome?, issuedHours: Double? = nil
    ) -> RolloutRecord {
        var record = RolloutRecord(
            id: id, app: app, release: id, serial: 1, environment: environment, strategy: "batch all", actor: "a@b", signers: [],
            owner: nil, notes: nil, source: nil, startedAt: t0.addingTimeInterval(startHours * hour), hosts: [])
        record.kind = kind
        record.outcome = outcome
        record.finishedAt = outcome == nil ? nil : record.startedAt.addingTimeInterval(minutes * 60)
        record.issuedAt = issuedHours.map { t0.addingTimeInterval($0 * hour) }
        return record
    }

    static var history: [RolloutRecord] {
        [
            rollout("d0", startHours: -24, outcome: .succeeded, issuedHours: -25),        // before the window
            rollout("d1", startHours: 1, outcome: .succeeded, issuedHours: 0),             // lead 1h10m
            rollout("d2", startHours: 24, outcome: .failed, issuedHours: 20),              // fails at 24h10m
            rollout("d3", startHours: 26, outcome: .succeeded, issuedHours: 25),           // lead 1h10m; restores d2 (2h); rework
            rollout("d4", startHours: 49, outcome: .succeeded, issuedHours: 40),           // lead 9h10m; undone by b1
            rollout("b1", kind: .rollback, startHours: 50, minutes: 5, outcome: .succeeded), // restores d4 in 5m
            rollout("x1", kind: .drill, startHours: 60, outcome: .failed),                 // a drill's leg: ignored
            rollout("x2", kind: .drill, startHours: 60.5, outcome: .succeeded),
            rollout("d5", startHours: 100, outcome: .paused, issuedHours: 99),             // not ended
            rollout("s1", environment: "staging", startHours: 5, outcome: .succeeded, issuedHours: 4),
            rollout("a1", app: "api", startHours: 200, outcome: .needsAttention, issuedHours: 199),
        ]
    }

    static var drills: [DrillRecord] {
        var drill = DrillRecord(id: "drill-1", app: "web", environment: "production", actor: "a@b",
                                startedAt: t0.addingTimeInterval(60 * hour), hosts: [])
        drill.outcome = .succeeded
        drill.finishedAt = drill.startedAt.addingTimeInterval(60)
        drill.timeToRecover = 3.5
        var failed = drill
        failed.id = "drill-2"
        failed.startedAt = t0.addingTimeInterval(70 * hour)
        failed.outcome = .failed
        failed.timeToRecover = nil
        failed.reason = "h1: the way back to v1 ended rolled_back"
        return [drill, failed]
    }

    @Test("frequency, lead time, change failure rate, time to restore and rework rate, per app and environment; drills apart")
    func metrics() throws {
        let report = DeliveryReport.make(rollouts: Self.history, drills: Self.drills, since: Self.t0, until: Self.t0.addingTimeInterval(14 * 24 * Self.hour))
        #expect(report.rows.map { "\($0.app)/\($0.environment)" } == ["api/production", "web/production", "web/staging"])

        let web = report.rows[1]
        #expect(web.deployments == 4)                 // d1..d4: not d0 (before), d5 (paused), the drill's legs
        #expect(web.succeeded == 3)
        #expect(web.deploymentsPerWeek == 1.5)         // 3 in two weeks
        #expect(web.leadTime == 4200)                  // median of 1h10m, 1h10m, 9h10m
        #expect(web.changeFailures == 2)               // d2 failed, d4 undone by a rollback
        #expect(web.changeFailureRate == 0.5)
        #expect(web.timeToRestore == 3750)             // median of 2h (d2 → d3) and 5m (b1)
        #expect(web.restored == 2 && web.unrestored == 0)
        #expect(web.rollbacks == 1)
        #expect(web.rework == 2)                       // b1, and d3 within a day of d2's failure
        #expect(web.reworkRate == 0.4)                 // 2 of 4 deployments + 1 rollback
        #expect(web.drills == 2 && web.drillsSucceeded == 1)
        #expect(web.lastSuccessfulDrill == Self.t0.addingTimeInterval(60 * Self.hour + 60))
        #expect(web.drillTimeToRecover == 3.5)
        #expect(web.lastDrillID == "drill-2" && web.lastDrillOutcome == .failed && web.lastDrillReason == "h1: the way back to v1 ended rolled_back")

        let staging = report.rows[2]
        #expect(staging.deployments == 1 && staging.deploymentsPerWeek == 0.5 && staging.leadTime == 4200)
        #expect(staging.changeFailureRate == 0 && staging.timeToRestore == nil && staging.reworkRate == 0)
        #expect(staging.drills == 0 && staging.lastSuccessfulDrill == nil)

        let api = report.rows[0]
        #expect(api.changeFailureRate == 1 && api.unrestored == 1 && api.timeToRestore == nil && api.leadTime == nil)
    }

    @Test("a window holds only what started in it; a failure restored after the window counts as restored")
    func window() throws {
        let history = [
            Self.rollout("f", startHours: 10, outcome: .failed, issuedHours: 9),
            Self.rollout("g", startHours: 30, outcome: .succeeded, issuedHours: 29),
        ]
        let report = DeliveryReport.make(rollouts: history, drills: [], since: Self.t0, until: Self.t0.addingTimeInterval(24 * Self.hour))
        let row = try #require(report.rows.first)
        #expect(row.deployments == 1 && row.succeeded == 0 && row.changeFailureRate == 1)
        #expect(row.timeToRestore == 20 * Self.hour)   // 10h10m → 30h10m
        #expect(row.rework == 0)                        // g started after the window
        #expect(DeliveryReport.make(rollouts: history, drills: [], since: Self.t0.addingTimeInterval(-48 * Self.hour), until: Self.t0).rows.isEmpty)
    }

    @Test("the table: rates with their counts, durations people read")
    func table() {
        let report = DeliveryReport.make(rollouts: Self.history, drills: Self.drills, since: Self.t0, until: Self.t0.addingTimeInterval(14 * 24 * Self.hour))
        let lines = report.lines(now: Self.t0.addingTimeInterval(62 * Self.hour))
        #expect(lines[1] == "APP          ENV          DEPLOYS  PER WEEK  LEAD TIME  CHANGE FAIL  RESTORE      REWORK      LAST DRILL")
        #expect(lines[3] == "web          production   4        1.5       1h 10m     50% (2/4)    1h 2m        40% (2/5)   1h 59m ago, recovered in 3.5s; the last drill failed", "\(lines[3])")
        #expect(lines[2].contains("100% (1/1)") && lines[2].contains("- +1 open") && lines[2].hasSuffix("never"), "\(lines[2])")
        #expect(DeliveryReport.duration(4.5) == "4.5s")
        #expect(DeliveryReport.duration(190) == "3m 10s" && DeliveryReport.duration(7500) == "2h 5m" && DeliveryReport.duration(3 * 86_400 + 4 * 3600) == "3d 4h")
    }
}
