@testable import BatonController
import BatonTestSupport
import Foundation
import GRDB
import Testing

/// When the SQLite history's commits reach the disk: a rollout's progress events are
/// written to the WAL without a sync of their own, and every other record is synced at
/// its commit (the rollout's end record takes the events before it along).
@Suite("SQLite history durability")
struct HistoryDurabilityTests {
    /// The SQL the store's connection runs, statement by statement.
    final class Statements: @unchecked Sendable {
        private let lock = NSLock()
        private var seen: [String] = []
        func add(_ sql: String) { lock.withLock { seen.append(sql) } }
        func take() -> [String] { lock.withLock { defer { seen = [] }; return seen } }
    }

    static func record(_ id: String, at: Date) -> RolloutRecord {
        RolloutRecord(
            id: id, app: "web", release: "v2", serial: 2, environment: "staging", strategy: "batch all",
            actor: "ci@runner", signers: [], owner: nil, notes: nil, source: nil, startedAt: at, hosts: [HostResult(host: "host-1")])
    }

    @Test("WAL mode; events step down to synchronous=NORMAL for their own commit only; the rest stays FULL")
    func eventsAreNotSyncedOnTheirOwn() throws {
        let directory = try TemporaryDirectory(prefix: "baton-history-sync")
        defer { directory.remove() }
        let store = try SQLiteHistoryStore(path: directory.child("history.sqlite"))
        let pragma = { (name: String) throws -> String? in try store.queue.read { try String.fetchOne($0, sql: "PRAGMA \(name)") } }
        #expect(try pragma("journal_mode") == "wal")
        #expect(try pragma("synchronous") == "2")  // FULL

        let statements = Statements()
        try store.queue.writeWithoutTransaction { db in db.trace { statements.add("\($0)") } }
        let start = Date()
        try store.rolloutStarted(Self.record("r1", at: start))
        let started = statements.take()
        #expect(!started.isEmpty && !started.contains { $0.contains("synchronous") }, "\(started)")

        try store.record(RolloutEvent(type: .host, rolloutID: "r1", host: "host-1", phase: .uploading, message: "uploading"))
        let event = statements.take()
        let normal = try #require(event.firstIndex(of: "PRAGMA synchronous = NORMAL"), "\(event)")
        let insert = try #require(event.firstIndex { $0.hasPrefix("INSERT INTO rollout_events") }, "\(event)")
        let full = try #require(event.lastIndex(of: "PRAGMA synchronous = FULL"), "\(event)")
        #expect(normal < insert && insert < full && event.contains("COMMIT TRANSACTION"), "\(event)")
        #expect(try pragma("synchronous") == "2")
        _ = statements.take()

        try store.rolloutFinished(RolloutSummary(
            rolloutID: "r1", app: "web", release: "v2", serial: 2, environment: "staging", strategy: "batch all",
            outcome: .succeeded, halted: false, haltReason: nil, startedAt: start, finishedAt: Date(),
            hosts: [HostResult(host: "host-1", phase: .succeeded)]))
        let finished = statements.take()
        #expect(!finished.isEmpty && !finished.contains { $0.contains("synchronous") }, "\(finished)")
    }

    @Test("an unsynced event is there at once for another controller on the same file, and after reopening")
    func eventsAreSharedAtOnce() throws {
        let directory = try TemporaryDirectory(prefix: "baton-history-wal")
        defer { directory.remove() }
        let path = directory.child("history.sqlite")
        let first = try SQLiteHistoryStore(path: path)
        let other = try SQLiteHistoryStore(path: path)
        try first.rolloutStarted(Self.record("r1", at: Date()))
        for phase in [HostPhase.querying, .uploading, .accepted] {
            try first.record(RolloutEvent(type: .host, rolloutID: "r1", host: "host-1", phase: phase, message: phase.rawValue))
            #expect(try other.events(rolloutID: "r1").last?.phase == phase)
        }
        // Locks stay exclusive between the two connections.
        let request = LockRequest(app: "web", environment: "staging", rolloutID: "r1", owner: "a", pid: 1, lease: 60)
        #expect(try first.acquireLock(request, now: Date()) == .acquired(term: 1))
        guard case .held = try other.acquireLock(
            LockRequest(app: "web", environment: "staging", rolloutID: "r2", owner: "b", pid: 2, lease: 60), now: Date())
        else {
            Issue.record("the second connection took a held lock")
            return
        }
        let reopened = try SQLiteHistoryStore(path: path)
        #expect(try reopened.events(rolloutID: "r1").map(\.phase) == [.querying, .uploading, .accepted])
        #expect(try reopened.rollout(id: "r1")?.hosts.first?.phase == .accepted)
    }
}
