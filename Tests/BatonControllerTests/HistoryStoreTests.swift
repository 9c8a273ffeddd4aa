import BatonController
import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

@Suite("SQLite history store")
struct HistoryStoreTests {
    @Test("a lock whose lease ran out is taken over, and the takeover is recorded; a live one is not")
    func leaseTakeover() throws {
        let dir = try TemporaryDirectory(prefix: "baton-history")
        defer { dir.remove() }
        let store = try SQLiteHistoryStore(path: dir.child("history.sqlite"))
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        let a = LockRequest(app: "web", environment: "production", rolloutID: "r-a", owner: "alice@laptop", pid: 10, lease: 60)
        let b = LockRequest(app: "web", environment: "production", rolloutID: "r-b", owner: "ci@runner", pid: 20, lease: 60)
        #expect(try store.acquireLock(a, now: t0) == .acquired(term: 1))
        guard case .held(let holder) = try store.acquireLock(b, now: t0.addingTimeInterval(30)) else {
            Issue.record("b got a live lock")
            return
        }
        #expect(holder.rolloutID == "r-a")
        // Renewing moves the lease on; a's renewals keep b out.
        #expect(try store.renewLock(app: "web", environment: "production", rolloutID: "r-a", term: 1, lease: 60, now: t0.addingTimeInterval(50)))
        if case .held = try store.acquireLock(b, now: t0.addingTimeInterval(100)) {} else { Issue.record("taken over despite renewal") }
        // a stops renewing (killed): past its lease, b takes over.
        guard case .tookOver(let previous, let term) = try store.acquireLock(b, now: t0.addingTimeInterval(111)) else {
            Issue.record("no takeover after the lease ran out")
            return
        }
        #expect(previous.rolloutID == "r-a" && previous.term == 1 && term == 2)
        #expect(try store.locks().map(\.rolloutID) == ["r-b"])
        #expect(try !store.renewLock(app: "web", environment: "production", rolloutID: "r-a", term: 1, lease: 60, now: t0.addingTimeInterval(112)))
        let events = try store.lockEvents(app: "web")
        #expect(events.map(\.action) == ["acquired", "taken_over"])
        #expect(events[1].detail?.contains("r-a") == true)
        // Another environment has its own lock.
        #expect(try store.acquireLock(LockRequest(app: "web", environment: "staging", rolloutID: "r-c", owner: "x", pid: 1, lease: 60), now: t0) == .acquired(term: 1))
        // Breaking is recorded with the reason.
        #expect(try store.breakLock(app: "web", environment: "production", actor: "bob@ops", reason: "CI runner gone", now: t0.addingTimeInterval(200))?.rolloutID == "r-b")
        #expect(try store.lockEvents(app: "web").last?.detail?.hasPrefix("CI runner gone") == true)
    }

    @Test("renew and release with a stale term do nothing, even for the same rollout id; terms never repeat")
    func staleTerm() throws {
        let dir = try TemporaryDirectory(prefix: "baton-history")
        defer { dir.remove() }
        let store = try SQLiteHistoryStore(path: dir.child("history.sqlite"))
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        // The first controller of r-a stalls past its lease; a second process picks r-a up
        // (`baton rollout resume`) under the same id.
        let first = LockRequest(app: "web", environment: "production", rolloutID: "r-a", owner: "alice@laptop", pid: 10, lease: 60)
        let second = LockRequest(app: "web", environment: "production", rolloutID: "r-a", owner: "ci@runner", pid: 20, lease: 60)
        #expect(try store.acquireLock(first, now: t0) == .acquired(term: 1))
        guard case .tookOver(_, let term) = try store.acquireLock(second, now: t0.addingTimeInterval(61)) else {
            Issue.record("no takeover after the lease ran out")
            return
        }
        #expect(term == 2)
        // The first wakes up: its renewal and its release name term 1 and change nothing.
        #expect(try !store.renewLock(app: "web", environment: "production", rolloutID: "r-a", term: 1, lease: 60, now: t0.addingTimeInterval(62)))
        try store.releaseLock(app: "web", environment: "production", rolloutID: "r-a", term: 1, now: t0.addingTimeInterval(63))
        let held = try #require(try store.locks().first)
        #expect(held.owner == "ci@runner" && held.pid == 20 && held.term == 2)
        #expect(held.expiresAt == t0.addingTimeInterval(121))
        #expect(try store.lockEvents(app: "web").map(\.action) == ["acquired", "taken_over"])
        // The holder's own term works; after its release the next acquisition gets a new term.
        #expect(try store.renewLock(app: "web", environment: "production", rolloutID: "r-a", term: 2, lease: 60, now: t0.addingTimeInterval(64)))
        try store.releaseLock(app: "web", environment: "production", rolloutID: "r-a", term: 2, now: t0.addingTimeInterval(65))
        #expect(try store.locks().isEmpty)
        #expect(try store.acquireLock(first, now: t0.addingTimeInterval(66)) == .acquired(term: 3))
    }

    @Test("a rollout is marked abandoned only while it has no outcome")
    func abandonedOnlyIfUnfinished() throws {
        let dir = try TemporaryDirectory(prefix: "baton-history")
        defer { dir.remove() }
        let store = try SQLiteHistoryStore(path: dir.child("history.sqlite"))
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

    @Test("the schema is migrated once; reopening keeps the data")
    func reopen() throws {
        let dir = try TemporaryDirectory(prefix: "baton-history")
        defer { dir.remove() }
        let path = dir.child("history.sqlite")
        do {
            let store = try SQLiteHistoryStore(path: path)
            try store.rolloutStarted(RolloutRecord(
                id: "r1", app: "web", release: "v1", serial: 1, environment: "staging", strategy: "batch all", actor: "a@b",
                signers: ["ci"], owner: nil, notes: "n", source: "abc123", startedAt: Date(), hosts: [HostResult(host: "h1")]))
        }
        let store = try SQLiteHistoryStore(path: path)
        let record = try #require(try store.rollout(id: "r1"))
        #expect(record.source == "abc123" && record.hosts.map(\.host) == ["h1"] && record.outcome == nil)
    }
}
