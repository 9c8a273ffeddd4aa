import BatonController
import BatonProtocol
import Foundation
import Testing

/// Drills and rollout kinds in both history stores: the same semantics on SQLite and
/// PostgreSQL (each test runs once per ``StoreKind``).
@Suite("drill history", .serialized)
struct DrillHistoryTests {
    static func drill(_ id: String, app: String = "web", environment: String = "staging", at start: Date, outcome: DrillRecord.Outcome?) -> DrillRecord {
        var host = DrillRecord.Host(host: "h1", original: "v2", previous: "v1")
        host.back = .succeeded
        host.forward = .succeeded
        host.final = "v2"
        host.timeToRecover = 1.25
        var record = DrillRecord(id: id, app: app, environment: environment, actor: "a@b", startedAt: start, hosts: [host])
        record.outcome = outcome
        record.finishedAt = outcome == nil ? nil : start.addingTimeInterval(5)
        record.timeToRecover = 1.25
        record.rollouts = ["r-back", "r-forward"]
        return record
    }

    @Test("a drill is saved, replaced when it ends, listed newest first and found as the last successful one", arguments: StoreKind.allCases)
    func drills(kind: StoreKind) throws {
        let location = try kind.makeLocation()
        defer { location.remove() }
        let store = try #require(try location.open() as? any DeliveryHistory)
        // Whole seconds: a drill's times are kept as RFC 3339 to the second, like every
        // time Baton writes as JSON (its durations keep their fractions).
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        var running = Self.drill("d1", at: t0, outcome: nil)
        try store.saveDrill(running)
        #expect(try store.lastSuccessfulDrill(app: "web", environment: "staging") == nil)
        running.outcome = .succeeded
        running.finishedAt = t0.addingTimeInterval(5)
        try store.saveDrill(running)
        try store.saveDrill(Self.drill("d2", at: t0.addingTimeInterval(60), outcome: .failed))
        try store.saveDrill(Self.drill("d3", environment: "production", at: t0.addingTimeInterval(120), outcome: .succeeded))
        try store.saveDrill(Self.drill("d4", app: "api", at: t0.addingTimeInterval(180), outcome: .succeeded))

        #expect(try store.drills(app: "web", environment: "staging", limit: 10).map(\.id) == ["d2", "d1"])
        #expect(try store.drills(app: nil, environment: nil, limit: 10).map(\.id) == ["d4", "d3", "d2", "d1"])
        #expect(try store.drills(app: "web", environment: nil, limit: 1).map(\.id) == ["d3"])
        let last = try #require(try store.lastSuccessfulDrill(app: "web", environment: "staging"))
        #expect(last == running, "the record comes back whole")
        // Another controller (a second connection) sees the same.
        let again = try #require(try location.open() as? any DeliveryHistory)
        #expect(try again.lastSuccessfulDrill(app: "web", environment: "production")?.id == "d3")
    }

    @Test("a rollout's kind and its manifest's issue time are kept; older rows read as rollouts", arguments: StoreKind.allCases)
    func rolloutKinds(kind: StoreKind) throws {
        let location = try kind.makeLocation()
        defer { location.remove() }
        let history = try location.open()
        let store = try #require(history as? any DeliveryHistory)
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        for id in ["r1", "r2"] {
            try history.rolloutStarted(RolloutRecord(
                id: id, app: "web", release: "v1", serial: 1, environment: "staging", strategy: "batch all", actor: "a@b",
                signers: [], owner: nil, notes: nil, source: nil, startedAt: start, hosts: []))
        }
        try store.noteRollout(id: "r2", kind: .rollback, issuedAt: start.addingTimeInterval(-90.25))
        let plain = try #require(try history.rollout(id: "r1"))
        #expect(plain.kind == .rollout && plain.issuedAt == nil)
        let noted = try #require(try history.rollout(id: "r2"))
        #expect(noted.kind == .rollback && noted.issuedAt == start.addingTimeInterval(-90.25))
        #expect(try history.migrations().contains { $0.name.contains("drills") })
    }
}

extension DrillHistoryTests {
    @Test("a drill's legs never become the release status compares hosts with", arguments: StoreKind.allCases.prefix(1))
    func drillLegsAreNotDesired(kind: StoreKind) throws {
        let location = try kind.makeLocation()
        defer { location.remove() }
        let history = try location.open()
        let store = try #require(history as? any DeliveryHistory)
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        for (index, (id, release, rolloutKind)) in [("r1", "v2", RolloutKind.rollout), ("r2", "v1", .drill)].enumerated() {
            let at = start.addingTimeInterval(Double(index) * 60)
            try history.rolloutStarted(RolloutRecord(
                id: id, app: "web", release: release, serial: UInt64(index + 1), environment: "staging", strategy: "batch all",
                actor: "a@b", signers: [], owner: nil, notes: nil, source: nil, startedAt: at, hosts: []))
            try store.noteRollout(id: id, kind: rolloutKind, issuedAt: at)
            try history.rolloutFinished(RolloutSummary(
                rolloutID: id, app: "web", release: release, serial: UInt64(index + 1), environment: "staging", strategy: "batch all",
                outcome: .succeeded, halted: false, haltReason: nil, startedAt: at, finishedAt: at.addingTimeInterval(5), hosts: []))
        }
        #expect(LastGoodReleases(history: history).release(app: "web", environment: "staging") == "v2")
    }
}

/// `drill: {maxAge: 30d}` in an app file, and which apps are due.
@Suite("drill age")
struct DrillDueTests {
    static let base = """
        app: web
        environments: [staging]
        """

    @Test("maxAge is read in days or as a duration; anything else is refused with the line")
    func parse() throws {
        #expect(try AppDefinition.parse(yaml: Self.base + "\ndrill: {maxAge: 30d}\n", file: "web.yaml").drillMaxAge == BatonDuration(milliseconds: 30 * 86_400_000))
        #expect(try AppDefinition.parse(yaml: Self.base + "\ndrill: {maxAge: 12h}\n", file: "web.yaml").drillMaxAge == BatonDuration(milliseconds: 12 * 3_600_000))
        #expect(try AppDefinition.parse(yaml: Self.base, file: "web.yaml").drillMaxAge == nil)
        for bad in ["drill: {maxAge: soon}", "drill: {maxAge: 0d}", "drill: {every: 30d}"] {
            #expect(throws: ConfigurationError.self, "\(bad)") { try AppDefinition.parse(yaml: Self.base + "\n" + bad + "\n", file: "web.yaml") }
        }
    }

    @Test("an app is due when its last successful drill is older than maxAge, or it never had one", arguments: StoreKind.allCases.prefix(1))
    func due(kind: StoreKind) throws {
        let location = try kind.makeLocation()
        defer { location.remove() }
        let store = try #require(try location.open() as? any DeliveryHistory)
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        try store.saveDrill(DrillHistoryTests.drill("old", at: now.addingTimeInterval(-40 * 86_400), outcome: .succeeded))
        try store.saveDrill(DrillHistoryTests.drill("recent-failed", at: now.addingTimeInterval(-86_400), outcome: .failed))
        try store.saveDrill(DrillHistoryTests.drill("fresh", app: "api", at: now.addingTimeInterval(-86_400), outcome: .succeeded))
        let web = try AppDefinition.parse(yaml: Self.base + "\ndrill: {maxAge: 30d}\n", file: "web.yaml")
        let api = try AppDefinition.parse(yaml: "app: api\nenvironments: [staging]\ndrill: {maxAge: 30d}\n", file: "api.yaml")
        let definitions: [String: AppDefinition] = ["web": web, "api": api]
        let due = try DrillDue.check(
            [("web", "staging"), ("web", "staging"), ("api", "staging"), ("db", "staging"), ("web", "production")],
            definition: { definitions[$0] }, history: store, now: now)
        #expect(due.map { "\($0.app)/\($0.environment)" } == ["web/staging", "web/production"])
        #expect(due[0].lastSucceeded == now.addingTimeInterval(-40 * 86_400 + 5))
        #expect(due[0].message(now: now).hasPrefix("web in staging: last successful drill 39d 23h ago (drill maxAge 30d)"), "\(due[0].message(now: now))")
        #expect(due[1].lastSucceeded == nil && due[1].message(now: now).contains("never drilled"))
    }
}
