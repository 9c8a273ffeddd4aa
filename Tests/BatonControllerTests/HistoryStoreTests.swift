import BatonController
import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

/// One suite, two stores: every test runs against SQLite and against PostgreSQL (a server
/// of the test process's own, PostgresServer). Leases are timed on the real clock with
/// short leases, because the PostgreSQL store reads the database's clock, not the `now`
/// it is given.
@Suite("History store (SQLite and PostgreSQL)")
struct HistoryStoreTests {
    @Test("a lock whose lease ran out is taken over, and the takeover is recorded; a live one is not", arguments: StoreKind.allCases)
    func leaseTakeover(kind: StoreKind) throws {
        let location = try kind.makeLocation()
        defer { location.remove() }
        let store = try location.open()
        let a = LockRequest(app: "web", environment: "production", rolloutID: "r-a", owner: "alice@laptop", pid: 10, lease: 1.5)
        let b = LockRequest(app: "web", environment: "production", rolloutID: "r-b", owner: "ci@runner", pid: 20, lease: 60)
        #expect(try store.acquireLock(a, now: Date()) == .acquired(term: 1))
        guard case .held(let holder) = try store.acquireLock(b, now: Date()) else {
            Issue.record("b got a live lock")
            return
        }
        #expect(holder.rolloutID == "r-a")
        // Renewing moves the lease on; a's renewal keeps b out past a's first lease.
        Thread.sleep(forTimeInterval: 1)
        #expect(try store.renewLock(app: "web", environment: "production", rolloutID: "r-a", term: 1, lease: 1.5, now: Date()))
        Thread.sleep(forTimeInterval: 0.8)
        if case .held = try store.acquireLock(b, now: Date()) {} else { Issue.record("taken over despite renewal") }
        // a stops renewing (killed): past its lease, b takes over.
        Thread.sleep(forTimeInterval: 1)
        guard case .tookOver(let previous, let term) = try store.acquireLock(b, now: Date()) else {
            Issue.record("no takeover after the lease ran out")
            return
        }
        #expect(previous.rolloutID == "r-a" && previous.term == 1 && term == 2)
        #expect(try store.locks().map(\.rolloutID) == ["r-b"])
        #expect(try !store.renewLock(app: "web", environment: "production", rolloutID: "r-a", term: 1, lease: 60, now: Date()))
        let events = try store.lockEvents(app: "web")
        #expect(events.map(\.action) == ["acquired", "taken_over"])
        #expect(events[1].detail?.contains("r-a") == true)
        // Another environment has its own lock.
        #expect(try store.acquireLock(LockRequest(app: "web", environment: "staging", rolloutID: "r-c", owner: "x", pid: 1, lease: 60), now: Date()) == .acquired(term: 1))
        // Breaking is recorded with the reason.
        #expect(try store.breakLock(app: "web", environment: "production", actor: "bob@ops", reason: "CI runner gone", now: Date())?.rolloutID == "r-b")
        #expect(try store.lockEvents(app: "web").last?.detail?.hasPrefix("CI runner gone") == true)
        #expect(try store.locks().map(\.environment) == ["staging"])
    }

    @Test("renew and release with a stale term do nothing, even for the same rollout id; terms never repeat", arguments: StoreKind.allCases)
    func staleTerm(kind: StoreKind) throws {
        let location = try kind.makeLocation()
        defer { location.remove() }
        let store = try location.open()
        // The first controller of r-a stalls past its lease; a second process picks r-a up
        // (`baton rollout resume`) under the same id.
        let first = LockRequest(app: "web", environment: "production", rolloutID: "r-a", owner: "alice@laptop", pid: 10, lease: 1)
        let second = LockRequest(app: "web", environment: "production", rolloutID: "r-a", owner: "ci@runner", pid: 20, lease: 60)
        #expect(try store.acquireLock(first, now: Date()) == .acquired(term: 1))
        Thread.sleep(forTimeInterval: 1.2)
        let takenAt = Date()
        guard case .tookOver(_, let term) = try store.acquireLock(second, now: takenAt) else {
            Issue.record("no takeover after the lease ran out")
            return
        }
        #expect(term == 2)
        // The first wakes up: its renewal and its release name term 1 and change nothing.
        #expect(try !store.renewLock(app: "web", environment: "production", rolloutID: "r-a", term: 1, lease: 60, now: Date()))
        try store.releaseLock(app: "web", environment: "production", rolloutID: "r-a", term: 1, now: Date())
        let held = try #require(try store.locks().first)
        #expect(held.owner == "ci@runner" && held.pid == 20 && held.term == 2)
        // The database's clock and this process's agree to well within a few seconds here.
        #expect(abs(held.expiresAt.timeIntervalSince(takenAt.addingTimeInterval(60))) < 5)
        #expect(try store.lockEvents(app: "web").map(\.action) == ["acquired", "taken_over"])
        // The holder's own term works; after its release the next acquisition gets a new term.
        #expect(try store.renewLock(app: "web", environment: "production", rolloutID: "r-a", term: 2, lease: 60, now: Date()))
        try store.releaseLock(app: "web", environment: "production", rolloutID: "r-a", term: 2, now: Date())
        #expect(try store.locks().isEmpty)
        #expect(try store.acquireLock(first, now: Date()) == .acquired(term: 3))
        #expect(try store.lockEvents(app: "web").map(\.action) == ["acquired", "taken_over", "released", "acquired"])
    }

    @Test("a rollout is marked abandoned only while it has no outcome", arguments: StoreKind.allCases)
    func abandonedOnlyIfUnfinished(kind: StoreKind) throws {
        let location = try kind.makeLocation()
        defer { location.remove() }
        let store = try location.open()
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        for id in ["r1", "r2"] {
            try store.rolloutStarted(RolloutRecord(
                id: id, app: "web", release: "v1", serial: 1, environment: "staging", strategy: "batch all", actor: "a@b",
                signers: ["ci"], owner: nil, notes: nil, source: nil, startedAt: now, hosts: [HostResult(host: "h1")]))
        }
        #expect(try store.rolloutAbandoned(id: "r1", reason: "taken over", now: now))
        let r1 = try #require(try store.rollout(id: "r1"))
        #expect(r1.outcome == .abandoned && r1.exitStatus == 4 && r1.haltReason == "taken over")
        try store.rolloutFinished(RolloutSummary(
            rolloutID: "r2", app: "web", release: "v1", serial: 1, environment: "staging", strategy: "batch all", outcome: .aborted,
            halted: true, haltReason: "aborted", startedAt: now, finishedAt: now, hosts: [HostResult(host: "h1")]))
        #expect(try !store.rolloutAbandoned(id: "r2", reason: "late", now: now))
        #expect(try store.rollout(id: "r2")?.outcome == .aborted)
    }

    @Test("the schema is migrated once; reopening keeps the data", arguments: StoreKind.allCases)
    func reopen(kind: StoreKind) throws {
        let location = try kind.makeLocation()
        defer { location.remove() }
        do {
            let store = try location.open()
            try store.rolloutStarted(RolloutRecord(
                id: "r1", app: "web", release: "v1", serial: 1, environment: "staging", strategy: "batch all", actor: "a@b",
                signers: ["ci"], owner: nil, notes: "n", source: "abc123", startedAt: Date(), hosts: [HostResult(host: "h1")]))
        }
        let store = try location.open()
        let record = try #require(try store.rollout(id: "r1"))
        #expect(record.source == "abc123" && record.hosts.map(\.host) == ["h1"] && record.outcome == nil)
    }

    @Test("a rollout's record, hosts and events come back as they were written", arguments: StoreKind.allCases)
    func roundTrip(kind: StoreKind) throws {
        let location = try kind.makeLocation()
        defer { location.remove() }
        let store = try location.open()
        let start = Date(timeIntervalSince1970: 1_800_000_000.25)
        var started = RolloutRecord(
            id: "r1", app: "web", release: "v2", serial: 7, environment: "production", strategy: "canary 1, then 50%", actor: "a@b",
            signers: ["ci", "alice"], owner: "team-web", notes: nil, source: "abc", startedAt: start,
            hosts: [HostResult(host: "h1"), HostResult(host: "h2")])
        // Rolled out during a change freeze, with one more approval than the threshold.
        started.breakGlass = true
        try store.rolloutStarted(started)
        try store.record(RolloutEvent(
            type: .host, time: start.addingTimeInterval(1), rolloutID: "r1", host: "h1", phase: .fetching, wave: "canary",
            deploymentID: "d-1", message: "deploying"))
        try store.record(RolloutEvent(
            type: .host, time: start.addingTimeInterval(2), rolloutID: "r1", host: "h2", phase: .failed, wave: "50%",
            deploymentID: nil, message: "failed", error: ErrorInfo(code: "health_check_failed", message: "503")))
        // Newest first, and filtered by app.
        try store.rolloutStarted(RolloutRecord(
            id: "r0", app: "api", release: "v1", serial: 1, environment: "production", strategy: "batch all", actor: "a@b",
            signers: [], owner: nil, notes: nil, source: nil, startedAt: start.addingTimeInterval(-60), hosts: []))
        #expect(try store.rollouts(app: nil, limit: 10).map(\.id) == ["r1", "r0"])
        #expect(try store.rollouts(app: "api", limit: 10).map(\.id) == ["r0"])
        #expect(try store.rollouts(app: nil, limit: 1).map(\.id) == ["r1"])
        let record = try #require(try store.rollout(id: "r1"))
        #expect(record.serial == 7 && record.signers == ["ci", "alice"] && record.owner == "team-web" && record.startedAt == start)
        #expect(record.breakGlass)
        #expect(try store.rollout(id: "r0")?.breakGlass == false)
        #expect(record.hosts.map(\.host) == ["h1", "h2"] && record.hosts.map(\.phase) == [.fetching, .failed])
        #expect(record.hosts[0].deploymentID == "d-1")
        let events = try store.events(rolloutID: "r1")
        #expect(events.map(\.message) == ["deploying", "failed"])
        #expect(events[1].error == ErrorInfo(code: "health_check_failed", message: "503") && events[0].wave == "canary")
        #expect(events[0].time == start.addingTimeInterval(1))
        #expect(try store.rollout(id: "nope") == nil)
    }

    @Test("resume information and the last good audit head per host are kept", arguments: StoreKind.allCases)
    func resumeAndAuditHeads(kind: StoreKind) throws {
        let location = try kind.makeLocation()
        defer { location.remove() }
        let store = try location.open()
        try store.rolloutStarted(RolloutRecord(
            id: "r1", app: "web", release: "v1", serial: 1, environment: "staging", strategy: "batch all", actor: "a@b",
            signers: [], owner: nil, notes: nil, source: nil, startedAt: Date(), hosts: []))
        let info = RolloutResumeInfo(rolloutID: "r1", envelope: [0, 1, 2, 255], hostIDs: ["h1", "h2"], strategy: RolloutStrategy(), artifactFile: nil)
        try store.saveResumeInfo(info)
        #expect(try store.resumeInfo(rolloutID: "r1") == info)
        var again = info
        again.artifactFile = "/tmp/a.tar.gz"
        try store.saveResumeInfo(again)
        #expect(try store.resumeInfo(rolloutID: "r1") == again)
        #expect(try store.resumeInfo(rolloutID: "r2") == nil)
        let seen = Date(timeIntervalSince1970: 1_800_000_000)
        let good = SeenAuditHead(host: "h1", lines: 10, hash: "aa", time: seen, signature: "sig", seenAt: seen, verdict: "consistent")
        try store.recordAuditHead(good)
        try store.recordAuditHead(SeenAuditHead(host: "h1", lines: 11, hash: "bb", time: seen, signature: "sig", seenAt: seen, verdict: "rewritten"))
        #expect(try store.lastAuditHead(host: "h1") == good)
        #expect(try store.lastAuditHead(host: "h2") == nil)
    }
}
