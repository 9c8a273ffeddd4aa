import BatonController
import BatonProtocol
import BatonTestSupport
import Foundation
import Synchronization
import Testing

/// The rollout session against a real SQLite history store and an in-memory fleet.
@Suite("Rollout session")
struct RolloutSessionTests {
    static let hosts = (1...3).map { Fleet.Host(id: "host-\($0)", address: "127.0.0.1:\(7400 + $0)", environment: "staging") }

    static func request(_ id: String, canary: Int = 0) -> RolloutRequest {
        let now = Date()
        let manifest = Manifest(
            app: "web", release: "v2", serial: 2, environment: "staging", issuedAt: now, expiresAt: now.addingTimeInterval(3600),
            artifact: ArtifactReference(sha256: String(repeating: "a", count: 64), size: 1, format: .tar))
        var strategy = RolloutStrategy()
        strategy.canary = canary
        return RolloutRequest(rolloutID: id, envelope: Array("envelope".utf8), manifest: manifest, hosts: hosts, strategy: strategy,
                              artifactFile: nil, revertKey: nil)
    }

    static func session(_ history: any HistoryStore, _ dir: TemporaryDirectory, agent: SessionTestAgent,
                        progress: any ProgressRenderer = Progress(), notices: Notices = Notices()) -> RolloutSession {
        var session = RolloutSession(
            history: history, state: ControllerState(root: dir.child("state")),
            makeClient: { _, _ in agent },
            progress: progress, notify: { notices.add($0) })
        session.catchesInterrupts = false
        return session
    }

    @Test("a rollout that runs to its end records its outcome, lets go of the lock and shuts its client down")
    func runsToTheEnd() async throws {
        let dir = try TemporaryDirectory(prefix: "baton-session")
        defer { dir.remove() }
        let store = try SQLiteHistoryStore(path: dir.child("history.sqlite"))
        let agent = SessionTestAgent()
        let progress = Progress()
        let summary = try await Self.session(store, dir, agent: agent, progress: progress).run(Self.request("r-1"), signers: ["ci"])
        #expect(summary.outcome == .succeeded && summary.exitStatus == 0)
        #expect(progress.summaries == [summary] && progress.events.last?.type == .finished)
        #expect(try store.events(rolloutID: "r-1").count == progress.events.count)
        #expect(try store.rollout(id: "r-1")?.outcome == .succeeded)
        #expect(try store.locks().isEmpty)
        #expect(agent.shutdowns == 1)
        #expect(agent.submitted.sorted() == ["host-1", "host-2", "host-3"])
    }

    @Test("when recording the start fails, the lock is released and the client shut down, and the error is the store's")
    func throwingBodyReleasesEverything() async throws {
        let dir = try TemporaryDirectory(prefix: "baton-session")
        defer { dir.remove() }
        let real = try SQLiteHistoryStore(path: dir.child("history.sqlite"))
        let agent = SessionTestAgent()
        let session = Self.session(InstrumentedStore(real, failsResumeInfo: true), dir, agent: agent)
        await #expect(throws: ControllerError(.stateError, "the disk is full")) {
            try await session.run(Self.request("r-1"), signers: ["ci"])
        }
        #expect(agent.shutdowns == 1)
        #expect(try real.locks().isEmpty)
        #expect(agent.submitted.isEmpty)
        #expect(try real.lockEvents(app: "web").map(\.action) == ["acquired", "released"])
    }

    @Test("progress events are written by a writer of their own, in order and in batches, all before the end record")
    func eventsAreWrittenOffTheRolloutsPath() async throws {
        let dir = try TemporaryDirectory(prefix: "baton-session")
        defer { dir.remove() }
        let real = try SQLiteHistoryStore(path: dir.child("history.sqlite"))
        // A store slow to write events (a PostgreSQL server far away, a busy disk): the
        // rollout goes on meanwhile, and what arrives during one write goes in the next.
        let store = InstrumentedStore(real, eventWriteDelay: 0.02)
        let progress = RecordedWhenShown(real, rolloutID: "r-1")
        let summary = try await Self.session(store, dir, agent: SessionTestAgent(), progress: progress).run(Self.request("r-1"), signers: ["ci"])
        #expect(summary.outcome == .succeeded)
        // Each event was in the history by the time it was shown.
        #expect(progress.unrecordedWhenShown.isEmpty, "\(progress.unrecordedWhenShown)")
        let writes = store.writes
        let batches = writes.filter { $0.hasPrefix("events ") }.compactMap { Int($0.dropFirst("events ".count)) }
        #expect(batches.reduce(0, +) == progress.events.count)
        #expect(batches.count < progress.events.count, "\(batches)")
        #expect(writes.last == "finished" && writes.filter { $0 == "finished" }.count == 1, "\(writes)")
        let recorded = try real.events(rolloutID: "r-1")
        #expect(recorded.map(\.message) == progress.events.map(\.message))
        #expect(recorded.map(\.host) == progress.events.map(\.host))
    }

    @Test("withAgentClient shuts the client down after its body, whether the body returns or throws")
    func scopedClient() async throws {
        let agent = SessionTestAgent()
        let value = try await withAgentClient(for: Self.hosts, using: { _, _ in agent }) { _ in 7 }
        #expect(value == 7 && agent.shutdowns == 1)
        await #expect(throws: ControllerError.self) {
            try await withAgentClient(for: Self.hosts, using: { _, _ in agent }) { _ throws(ControllerError) -> Int in
                throw ControllerError(.noHosts, "body failed")
            }
        }
        #expect(agent.shutdowns == 2)
    }

    @Test("a second session for the same app and environment is refused with lock_held while the first holds the lock")
    func secondSessionIsRefused() async throws {
        let dir = try TemporaryDirectory(prefix: "baton-session")
        defer { dir.remove() }
        let store = try SQLiteHistoryStore(path: dir.child("history.sqlite"))
        let agent = SessionTestAgent(held: "host-1")
        let first = Task { try await Self.session(store, dir, agent: agent).run(Self.request("r-first", canary: 1), signers: ["ci"]) }
        for await _ in agent.reached { break }

        let other = SessionTestAgent()
        let refused = await #expect(throws: ControllerError.self) {
            try await Self.session(store, dir, agent: other).run(Self.request("r-second"), signers: ["ci"])
        }
        #expect(refused?.code == .lockHeld && refused?.message.contains("rollout r-first") == true, "\(String(describing: refused))")
        // Refused before any client was made (a made one is always shut down), and without a record.
        #expect(other.shutdowns == 0 && other.submitted.isEmpty)
        #expect(try store.rollout(id: "r-second") == nil)

        agent.proceed()
        #expect(try await first.value.outcome == .succeeded)
        #expect(try store.locks().isEmpty)
    }

    @Test("a lock whose lease ran out is taken over with a warning to the operator, and its dead rollout is recorded abandoned")
    func expiredLockIsTakenOver() async throws {
        let dir = try TemporaryDirectory(prefix: "baton-session")
        defer { dir.remove() }
        let store = try SQLiteHistoryStore(path: dir.child("history.sqlite"))
        // A controller that died two minutes ago, mid-rollout, without recording its end.
        let dead = Self.request("r-dead")
        try store.rolloutStarted(RolloutRecord(
            id: "r-dead", app: "web", release: "v2", serial: 2, environment: "staging", strategy: "", actor: "ci@gone", signers: [],
            owner: nil, notes: nil, source: nil, startedAt: Date().addingTimeInterval(-180), hosts: dead.hosts.map { HostResult(host: $0.id) }))
        let deadLock = LockRequest(app: "web", environment: "staging", rolloutID: "r-dead", owner: "ci@gone", pid: 1, lease: 60)
        #expect(try store.acquireLock(deadLock, now: Date().addingTimeInterval(-120)) == .acquired(term: 1))

        let notices = Notices()
        let summary = try await Self.session(store, dir, agent: SessionTestAgent(), notices: notices).run(Self.request("r-new"), signers: ["ci"])
        #expect(summary.outcome == .succeeded)
        #expect(notices.all.count == 1 && notices.all.first?.hasPrefix("warning: took over the lock of web in staging from rollout r-dead (ci@gone, pid 1)") == true,
                "\(notices.all)")
        #expect(try store.rollout(id: "r-dead")?.outcome == .abandoned)
        #expect(try store.lockEvents(app: "web").map(\.action) == ["acquired", "taken_over", "released"])
    }

    @Test("a session whose lock is broken and taken over stops before its next wave and is recorded abandoned")
    func takenOverLockAbandons() async throws {
        let dir = try TemporaryDirectory(prefix: "baton-session")
        defer { dir.remove() }
        let store = try SQLiteHistoryStore(path: dir.child("history.sqlite"))
        let agent = SessionTestAgent(held: "host-1")
        let running = Task { try await Self.session(store, dir, agent: agent).run(Self.request("r-1", canary: 1), signers: ["ci"]) }
        for await _ in agent.reached { break }

        // An operator breaks the lock and another rollout takes it while the canary deploys.
        #expect(try store.breakLock(app: "web", environment: "staging", actor: "bob@ops", reason: "stuck", now: Date())?.rolloutID == "r-1")
        let other = LockRequest(app: "web", environment: "staging", rolloutID: "r-other", owner: "ci@runner", pid: 1, lease: 60)
        guard case .acquired = try store.acquireLock(other, now: Date()) else {
            Issue.record("the broken lock was not free")
            return
        }
        agent.proceed()

        let summary = try await running.value
        #expect(summary.outcome == .abandoned && summary.exitStatus == 4)
        #expect(agent.submitted == ["host-1"], "the batch after the canary must not start")
        #expect(try store.rollout(id: "r-1")?.outcome == .abandoned)
        // The new holder's lock is left alone: the session's release names its own, older term.
        #expect(try store.locks().map(\.rolloutID) == ["r-other"])
        #expect(agent.shutdowns == 1)
    }
}

/// What the session told the operator besides progress.
final class Notices: Sendable {
    private let lines = Mutex<[String]>([])
    var all: [String] { lines.withLock { $0 } }
    func add(_ line: String) { lines.withLock { $0.append(line) } }
}

/// Shows nothing; notes each event that was not yet in the history when it was shown.
final class RecordedWhenShown: ProgressRenderer {
    let store: SQLiteHistoryStore
    let rolloutID: String
    private let shown = Mutex<(events: [RolloutEvent], unrecorded: [String])>(([], []))
    var events: [RolloutEvent] { shown.withLock { $0.events } }
    var unrecordedWhenShown: [String] { shown.withLock { $0.unrecorded } }

    init(_ store: SQLiteHistoryStore, rolloutID: String) {
        self.store = store
        self.rolloutID = rolloutID
    }

    func handle(_ event: RolloutEvent) {
        let recorded = (try? store.events(rolloutID: rolloutID).count) ?? 0
        shown.withLock {
            $0.events.append(event)
            if recorded < $0.events.count { $0.unrecorded.append(event.message) }
        }
    }
    func finish(_ summary: RolloutSummary) {}
}

/// What the session showed: the events and the final summary.
final class Progress: ProgressRenderer {
    private let shown = Mutex<(events: [RolloutEvent], summaries: [RolloutSummary])>(([], []))
    var events: [RolloutEvent] { shown.withLock { $0.events } }
    var summaries: [RolloutSummary] { shown.withLock { $0.summaries } }
    func handle(_ event: RolloutEvent) { shown.withLock { $0.events.append(event) } }
    func finish(_ summary: RolloutSummary) { shown.withLock { $0.summaries.append(summary) } }
}

/// The real store, watched: which writes came in what order (event writes with their
/// batch sizes), optionally slow to write events, or failing to save the resume
/// information (a failure after the session took the lock and made its client).
private final class InstrumentedStore: HistoryStore, Sendable {
    let base: SQLiteHistoryStore
    let failsResumeInfo: Bool
    let eventWriteDelay: TimeInterval
    private let log = Mutex<[String]>([])
    var writes: [String] { log.withLock { $0 } }

    init(_ base: SQLiteHistoryStore, failsResumeInfo: Bool = false, eventWriteDelay: TimeInterval = 0) {
        self.base = base
        self.failsResumeInfo = failsResumeInfo
        self.eventWriteDelay = eventWriteDelay
    }

    func saveResumeInfo(_ info: RolloutResumeInfo) throws(ControllerError) {
        if failsResumeInfo { throw ControllerError(.stateError, "the disk is full") }
        try base.saveResumeInfo(info)
    }
    func record(_ event: RolloutEvent) throws(ControllerError) { try record([event]) }
    func record(_ events: [RolloutEvent]) throws(ControllerError) {
        if eventWriteDelay > 0 { Thread.sleep(forTimeInterval: eventWriteDelay) }
        log.withLock { $0.append("events \(events.count)") }
        try base.record(events)
    }
    func rolloutFinished(_ summary: RolloutSummary) throws(ControllerError) {
        log.withLock { $0.append("finished") }
        try base.rolloutFinished(summary)
    }

    func rolloutStarted(_ rollout: RolloutRecord) throws(ControllerError) { try base.rolloutStarted(rollout) }
    func rolloutAbandoned(id: String, reason: String, now: Date) throws(ControllerError) -> Bool {
        try base.rolloutAbandoned(id: id, reason: reason, now: now)
    }
    func rollouts(app: String?, limit: Int) throws(ControllerError) -> [RolloutRecord] { try base.rollouts(app: app, limit: limit) }
    func rollout(id: String) throws(ControllerError) -> RolloutRecord? { try base.rollout(id: id) }
    func events(rolloutID: String) throws(ControllerError) -> [RolloutEvent] { try base.events(rolloutID: rolloutID) }
    func recordAuditHead(_ head: SeenAuditHead) throws(ControllerError) { try base.recordAuditHead(head) }
    func lastAuditHead(host: String) throws(ControllerError) -> SeenAuditHead? { try base.lastAuditHead(host: host) }
    func resumeInfo(rolloutID: String) throws(ControllerError) -> RolloutResumeInfo? { try base.resumeInfo(rolloutID: rolloutID) }
    func acquireLock(_ request: LockRequest, now: Date) throws(ControllerError) -> LockAcquisition { try base.acquireLock(request, now: now) }
    func takeOverLock(_ request: LockRequest, from holder: RolloutLock, reason: String, now: Date) throws(ControllerError) -> LockAcquisition {
        try base.takeOverLock(request, from: holder, reason: reason, now: now)
    }
    func renewLock(app: String, environment: String, rolloutID: String, term: Int, lease: TimeInterval, now: Date) throws(ControllerError) -> Bool {
        try base.renewLock(app: app, environment: environment, rolloutID: rolloutID, term: term, lease: lease, now: now)
    }
    func releaseLock(app: String, environment: String, rolloutID: String, term: Int, now: Date) throws(ControllerError) {
        try base.releaseLock(app: app, environment: environment, rolloutID: rolloutID, term: term, now: now)
    }
    func breakLock(app: String, environment: String, actor: String, reason: String, now: Date) throws(ControllerError) -> RolloutLock? {
        try base.breakLock(app: app, environment: environment, actor: actor, reason: reason, now: now)
    }
    func locks() throws(ControllerError) -> [RolloutLock] { try base.locks() }
    func lockEvents(app: String?) throws(ControllerError) -> [LockEvent] { try base.lockEvents(app: app) }
    func migrations() throws(ControllerError) -> [AppliedMigration] { try base.migrations() }
}
