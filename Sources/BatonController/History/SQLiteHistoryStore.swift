import BatonProtocol
import Foundation
import GRDB

/// The history and the locks in one SQLite file (`<state>/history.sqlite`) through GRDB.
/// Several controllers on one machine (two CI jobs, say) share it safely: SQLite's own
/// file locking, a busy timeout, and immediate transactions for the lock table.
///
/// The file is in WAL mode. Every transaction is atomic and survives a crash of the
/// process; what differs is when it is on disk (``Durability``). Records a person or
/// another controller relies on (a rollout's start and end, locks, releases, approvals,
/// serials, receipts) are synced at their commit; a rollout's progress events, dozens per
/// host, are not, and reach the disk with the next synced commit, the rollout's end
/// record at the latest. Syncing each event (several fsyncs per commit in the default
/// rollback-journal mode) cost a 10-host rollout about 800 fdatasyncs, 200 journal files
/// created and deleted, and a quarter of its time when the state directory was on disk
/// (docs/durability.md).
public final class SQLiteHistoryStore: HistoryStore {
    let queue: DatabaseQueue
    public let path: String

    public init(path: String) throws(ControllerError) {
        self.path = path
        do {
            var configuration = Configuration()
            configuration.busyMode = .timeout(10)
            configuration.label = "baton-history"
            configuration.journalMode = .wal
            queue = try DatabaseQueue(path: path, configuration: configuration)
            // GRDB's WAL set-up picks NORMAL for the connection; FULL is the default here,
            // and only `Durability.deferred` writes step down from it.
            try queue.writeWithoutTransaction { try $0.execute(sql: "PRAGMA synchronous = FULL") }
            try Self.migrator.migrate(queue)
        } catch {
            throw ControllerError(.stateError, "cannot open the history store '\(path)': \(error)")
        }
    }

    /// Every schema change is a new migration appended here, never an edit of an old one.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE rollouts (
                    id TEXT PRIMARY KEY, app TEXT NOT NULL, release TEXT NOT NULL, serial INTEGER NOT NULL,
                    environment TEXT NOT NULL, strategy TEXT NOT NULL, actor TEXT NOT NULL, signers TEXT NOT NULL,
                    owner TEXT, notes TEXT, source TEXT, startedAt REAL NOT NULL, finishedAt REAL,
                    outcome TEXT, exitStatus INTEGER, halted INTEGER NOT NULL DEFAULT 0, haltReason TEXT, revertSerial INTEGER);
                CREATE INDEX rollouts_by_app ON rollouts(app, startedAt);
                CREATE TABLE rollout_hosts (
                    rolloutID TEXT NOT NULL REFERENCES rollouts(id) ON DELETE CASCADE, position INTEGER NOT NULL,
                    host TEXT NOT NULL, phase TEXT NOT NULL, wave TEXT, previousRelease TEXT, deploymentID TEXT,
                    revertDeploymentID TEXT, errorCode TEXT, errorMessage TEXT, needsAttention INTEGER NOT NULL DEFAULT 0,
                    startedAt REAL, finishedAt REAL, PRIMARY KEY (rolloutID, host));
                CREATE TABLE rollout_events (
                    rolloutID TEXT NOT NULL REFERENCES rollouts(id) ON DELETE CASCADE, sequence INTEGER NOT NULL,
                    time REAL NOT NULL, type TEXT NOT NULL, host TEXT, phase TEXT, wave TEXT, deploymentID TEXT,
                    message TEXT NOT NULL, errorCode TEXT, errorMessage TEXT, PRIMARY KEY (rolloutID, sequence));
                CREATE TABLE locks (
                    app TEXT NOT NULL, environment TEXT NOT NULL, rolloutID TEXT NOT NULL, owner TEXT NOT NULL,
                    pid INTEGER NOT NULL, acquiredAt REAL NOT NULL, renewedAt REAL NOT NULL, expiresAt REAL NOT NULL,
                    PRIMARY KEY (app, environment));
                CREATE TABLE lock_events (
                    id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, app TEXT NOT NULL, environment TEXT NOT NULL,
                    action TEXT NOT NULL, rolloutID TEXT, actor TEXT NOT NULL, detail TEXT);
                """)
        }
        migrator.registerMigration("v2-resume") { db in
            try db.execute(sql: """
                CREATE TABLE rollout_resume (
                    rolloutID TEXT PRIMARY KEY REFERENCES rollouts(id) ON DELETE CASCADE, envelope BLOB NOT NULL,
                    hostIDs TEXT NOT NULL, strategy TEXT NOT NULL, artifactFile TEXT);
                """)
        }
        migrator.registerMigration("v3-audit-heads") { db in
            try db.execute(sql: """
                CREATE TABLE audit_heads (
                    id INTEGER PRIMARY KEY AUTOINCREMENT, host TEXT NOT NULL, lines INTEGER NOT NULL, hash TEXT NOT NULL,
                    time REAL NOT NULL, signature TEXT NOT NULL, seenAt REAL NOT NULL, verdict TEXT NOT NULL);
                CREATE INDEX audit_heads_by_host ON audit_heads(host, id);
                """)
        }
        // Fenced locks: the holder's term is on its row, and the last term handed out per app
        // and environment outlives the row (release and break delete it), so terms never repeat.
        migrator.registerMigration("v4-lock-terms") { db in
            try db.execute(sql: """
                ALTER TABLE locks ADD COLUMN term INTEGER NOT NULL DEFAULT 0;
                CREATE TABLE lock_terms (
                    app TEXT NOT NULL, environment TEXT NOT NULL, term INTEGER NOT NULL, PRIMARY KEY (app, environment));
                """)
        }
        // Whether a rollout went out during a change freeze by breaking glass.
        migrator.registerMigration("v5-break-glass") { db in
            try db.execute(sql: "ALTER TABLE rollouts ADD COLUMN breakGlass INTEGER NOT NULL DEFAULT 0")
        }
        // Releases, approvals and serial counters (SQLiteHistoryStore+Releases.swift).
        migrator.registerMigration("v6-releases", migrate: releasesMigration)
        // Drills, and what delivery metrics need of a rollout: its kind and when its manifest
        // was issued (SQLiteHistoryStore+Drills.swift).
        migrator.registerMigration("v7-drills") { db in
            try db.execute(sql: """
                ALTER TABLE rollouts ADD COLUMN kind TEXT NOT NULL DEFAULT 'rollout';
                ALTER TABLE rollouts ADD COLUMN issuedAt REAL;
                CREATE TABLE drills (
                    id TEXT PRIMARY KEY, app TEXT NOT NULL, environment TEXT NOT NULL, startedAt REAL NOT NULL,
                    outcome TEXT, record TEXT NOT NULL);
                CREATE INDEX drills_by_app ON drills(app, environment, startedAt);
                """)
        }
        // Agents' signed receipts and the revert envelopes rollouts signed (`baton evidence`).
        migrator.registerMigration("v8-receipts") { db in
            try db.execute(sql: SQLiteHistoryStore.receiptsMigration)
        }
        return migrator
    }

    public func migrations() throws(ControllerError) -> [AppliedMigration] {
        let applied = try read { db in try Set(Self.migrator.appliedIdentifiers(db)) }
        return Self.migrator.migrations.enumerated().filter { applied.contains($0.element) }.map { position, name in
            AppliedMigration(id: position + 1, name: name, appliedAt: nil)
        }
    }

    public func recordAuditHead(_ head: SeenAuditHead) throws(ControllerError) {
        try write { db in
            try db.execute(
                sql: "INSERT INTO audit_heads (host, lines, hash, time, signature, seenAt, verdict) VALUES (?, ?, ?, ?, ?, ?, ?)",
                arguments: [head.host, head.lines, head.hash, head.time.timeIntervalSince1970, head.signature,
                            head.seenAt.timeIntervalSince1970, head.verdict])
        }
    }

    public func lastAuditHead(host: String) throws(ControllerError) -> SeenAuditHead? {
        let row = try read { db in
            try Row.fetchOne(
                db, sql: "SELECT * FROM audit_heads WHERE host = ? AND verdict IN ('first', 'consistent', 'accepted') ORDER BY id DESC LIMIT 1",
                arguments: [host])
        }
        guard let row else { return nil }
        return SeenAuditHead(
            host: row["host"], lines: row["lines"], hash: row["hash"], time: Date(timeIntervalSince1970: row["time"]),
            signature: row["signature"], seenAt: Date(timeIntervalSince1970: row["seenAt"]), verdict: row["verdict"])
    }

    public func saveResumeInfo(_ info: RolloutResumeInfo) throws(ControllerError) {
        let strategy = String(decoding: (try? BatonJSON.encode(info.strategy)) ?? Data("{}".utf8), as: UTF8.self)
        try write { db in
            try db.execute(
                sql: "INSERT OR REPLACE INTO rollout_resume (rolloutID, envelope, hostIDs, strategy, artifactFile) VALUES (?, ?, ?, ?, ?)",
                arguments: [info.rolloutID, Data(info.envelope), info.hostIDs.joined(separator: ","), strategy, info.artifactFile])
        }
    }

    public func resumeInfo(rolloutID: String) throws(ControllerError) -> RolloutResumeInfo? {
        let row = try read { db in try Row.fetchOne(db, sql: "SELECT * FROM rollout_resume WHERE rolloutID = ?", arguments: [rolloutID]) }
        guard let row else { return nil }
        let strategyText: String = row["strategy"]
        guard let strategy = try? BatonJSON.decode(RolloutStrategy.self, from: Data(strategyText.utf8)) else {
            throw ControllerError(.stateError, "the stored strategy of rollout \(rolloutID) cannot be read")
        }
        let envelope: Data = row["envelope"]
        let hosts: String = row["hostIDs"]
        return RolloutResumeInfo(
            rolloutID: rolloutID, envelope: Array(envelope), hostIDs: hosts.components(separatedBy: ","), strategy: strategy,
            artifactFile: row["artifactFile"])
    }

    /// When a committed transaction is on disk.
    enum Durability {
        /// Synced before the commit returns (`synchronous = FULL`): it survives a power loss.
        case synced
        /// Written to the WAL and synced with the next synced commit or checkpoint
        /// (`synchronous = NORMAL`): a power loss may take it back, never half of it.
        case deferred
    }

    func write<T>(_ durability: Durability = .synced, _ body: (Database) throws -> T) throws(ControllerError) -> T {
        do {
            var result: T?
            try queue.writeWithoutTransaction { db in
                if durability == .deferred { try db.execute(sql: "PRAGMA synchronous = NORMAL") }
                defer { if durability == .deferred { try? db.execute(sql: "PRAGMA synchronous = FULL") } }
                try db.inTransaction(.immediate) {
                    result = try body(db)
                    return .commit
                }
            }
            return result!
        } catch {
            throw ControllerError(.stateError, "the history store '\(path)' failed: \(error)")
        }
    }

    func read<T>(_ body: (Database) throws -> T) throws(ControllerError) -> T {
        do { return try queue.read(body) } catch {
            throw ControllerError(.stateError, "the history store '\(path)' failed: \(error)")
        }
    }

    // MARK: Rollouts

    public func rolloutStarted(_ rollout: RolloutRecord) throws(ControllerError) {
        try write { db in
            try db.execute(
                sql: """
                    INSERT INTO rollouts (id, app, release, serial, environment, strategy, actor, signers, owner, notes, source, startedAt, breakGlass)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT(id) DO UPDATE SET finishedAt = NULL, outcome = NULL, exitStatus = NULL, halted = 0, haltReason = NULL
                    """,
                arguments: [rollout.id, rollout.app, rollout.release, Int64(rollout.serial), rollout.environment, rollout.strategy,
                            rollout.actor, rollout.signers.joined(separator: ","), rollout.owner, rollout.notes, rollout.source,
                            rollout.startedAt.timeIntervalSince1970, rollout.breakGlass])
            // A resumed rollout keeps what its hosts already reached.
            for (position, host) in rollout.hosts.enumerated() {
                let known = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM rollout_hosts WHERE rolloutID = ? AND host = ?", arguments: [rollout.id, host.host]) ?? 0
                if known == 0 { try Self.upsert(host, position: position, rolloutID: rollout.id, db) }
            }
        }
    }

    /// A progress event: not synced on its own (``Durability/deferred``); the rollout's end
    /// record (``rolloutFinished(_:)``), a synced commit, takes every event before it to disk.
    public func record(_ event: RolloutEvent) throws(ControllerError) {
        try record([event])
    }

    /// Events in one deferred transaction, in order.
    public func record(_ events: [RolloutEvent]) throws(ControllerError) {
        guard let first = events.first else { return }
        try write(.deferred) { db in
            var next = try Int.fetchOne(db, sql: "SELECT COALESCE(MAX(sequence), 0) + 1 FROM rollout_events WHERE rolloutID = ?",
                                        arguments: [first.rolloutID]) ?? 1
            for event in events {
                if event.rolloutID != first.rolloutID {
                    next = try Int.fetchOne(db, sql: "SELECT COALESCE(MAX(sequence), 0) + 1 FROM rollout_events WHERE rolloutID = ?",
                                            arguments: [event.rolloutID]) ?? 1
                }
                try Self.insert(event, sequence: next, db)
                next += 1
            }
        }
    }

    private static func insert(_ event: RolloutEvent, sequence: Int, _ db: Database) throws {
        try db.execute(
            sql: """
                INSERT INTO rollout_events (rolloutID, sequence, time, type, host, phase, wave, deploymentID, message, errorCode, errorMessage)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [event.rolloutID, sequence, event.time.timeIntervalSince1970, event.type.rawValue, event.host,
                        event.phase?.rawValue, event.wave, event.deploymentID, event.message, event.error?.code, event.error?.message])
        if let host = event.host, let phase = event.phase {
            try db.execute(
                sql: "UPDATE rollout_hosts SET phase = ?, deploymentID = COALESCE(deploymentID, ?) WHERE rolloutID = ? AND host = ?",
                arguments: [phase.rawValue, phase == .reverting ? nil : event.deploymentID, event.rolloutID, host])
        }
    }

    public func rolloutFinished(_ summary: RolloutSummary) throws(ControllerError) {
        try write { db in
            try db.execute(
                sql: """
                    UPDATE rollouts SET finishedAt = ?, outcome = ?, exitStatus = ?, halted = ?, haltReason = ?, revertSerial = ?
                    WHERE id = ?
                    """,
                arguments: [summary.finishedAt.timeIntervalSince1970, summary.outcome.rawValue, summary.exitStatus, summary.halted,
                            summary.haltReason, summary.revertSerial.map { Int64($0) }, summary.rolloutID])
            for (position, host) in summary.hosts.enumerated() { try Self.upsert(host, position: position, rolloutID: summary.rolloutID, db) }
        }
    }

    public func rolloutAbandoned(id: String, reason: String, now: Date) throws(ControllerError) -> Bool {
        try write { db in
            try db.execute(
                sql: """
                    UPDATE rollouts SET finishedAt = ?, outcome = ?, exitStatus = ?, halted = 1, haltReason = ?
                    WHERE id = ? AND outcome IS NULL
                    """,
                arguments: [now.timeIntervalSince1970, RolloutOutcome.abandoned.rawValue, RolloutOutcome.abandoned.exitStatus, reason, id])
            return db.changesCount == 1
        }
    }

    static func upsert(_ host: HostResult, position: Int, rolloutID: String, _ db: Database) throws {
        try db.execute(
            sql: """
                INSERT OR REPLACE INTO rollout_hosts (rolloutID, position, host, phase, wave, previousRelease, deploymentID,
                    revertDeploymentID, errorCode, errorMessage, needsAttention, startedAt, finishedAt)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [rolloutID, position, host.host, host.phase.rawValue, host.wave, host.previousRelease, host.deploymentID,
                        host.revertDeploymentID, host.error?.code, host.error?.message, host.needsAttention,
                        host.startedAt?.timeIntervalSince1970, host.finishedAt?.timeIntervalSince1970])
    }

    public func rollouts(app: String?, limit: Int) throws(ControllerError) -> [RolloutRecord] {
        try read { db in
            let rows = try Row.fetchAll(
                db, sql: "SELECT * FROM rollouts WHERE (? IS NULL OR app = ?) ORDER BY startedAt DESC, id DESC LIMIT ?",
                arguments: [app, app, limit])
            return try rows.map { try Self.rollout($0, db) }
        }
    }

    public func rollout(id: String) throws(ControllerError) -> RolloutRecord? {
        try read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM rollouts WHERE id = ?", arguments: [id]).map { try Self.rollout($0, db) }
        }
    }

    static func rollout(_ row: Row, _ db: Database) throws -> RolloutRecord {
        let id: String = row["id"]
        let signers: String = row["signers"]
        var record = RolloutRecord(
            id: id, app: row["app"], release: row["release"], serial: UInt64(row["serial"] as Int64),
            environment: row["environment"], strategy: row["strategy"], actor: row["actor"],
            signers: signers.isEmpty ? [] : signers.components(separatedBy: ","), owner: row["owner"], notes: row["notes"],
            source: row["source"], startedAt: Date(timeIntervalSince1970: row["startedAt"]), hosts: [])
        record.finishedAt = (row["finishedAt"] as Double?).map { Date(timeIntervalSince1970: $0) }
        record.outcome = (row["outcome"] as String?).flatMap(RolloutOutcome.init(rawValue:))
        record.exitStatus = (row["exitStatus"] as Int64?).map { Int32($0) }
        record.halted = row["halted"]
        record.haltReason = row["haltReason"]
        record.revertSerial = (row["revertSerial"] as Int64?).map { UInt64($0) }
        record.breakGlass = row["breakGlass"]
        record.kind = (row["kind"] as String?).flatMap(RolloutKind.init(rawValue:)) ?? .rollout
        record.issuedAt = (row["issuedAt"] as Double?).map { Date(timeIntervalSince1970: $0) }
        record.hosts = try Row.fetchAll(db, sql: "SELECT * FROM rollout_hosts WHERE rolloutID = ? ORDER BY position", arguments: [id]).map { row in
            var host = HostResult(host: row["host"], phase: HostPhase(rawValue: row["phase"]) ?? .pending)
            host.wave = row["wave"]
            host.previousRelease = row["previousRelease"]
            host.deploymentID = row["deploymentID"]
            host.revertDeploymentID = row["revertDeploymentID"]
            if let code: String = row["errorCode"] { host.error = ErrorInfo(code: code, message: row["errorMessage"] ?? "") }
            host.needsAttention = row["needsAttention"]
            host.startedAt = (row["startedAt"] as Double?).map { Date(timeIntervalSince1970: $0) }
            host.finishedAt = (row["finishedAt"] as Double?).map { Date(timeIntervalSince1970: $0) }
            return host
        }
        return record
    }

    public func events(rolloutID: String) throws(ControllerError) -> [RolloutEvent] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM rollout_events WHERE rolloutID = ? ORDER BY sequence", arguments: [rolloutID]).map { row in
                RolloutEvent(
                    type: RolloutEvent.Kind(rawValue: row["type"]) ?? .host, time: Date(timeIntervalSince1970: row["time"]),
                    rolloutID: rolloutID, host: row["host"], phase: (row["phase"] as String?).flatMap(HostPhase.init(rawValue:)),
                    wave: row["wave"], deploymentID: row["deploymentID"], message: row["message"],
                    error: (row["errorCode"] as String?).map { ErrorInfo(code: $0, message: row["errorMessage"] ?? "") })
            }
        }
    }

    // MARK: Locks

    public func acquireLock(_ request: LockRequest, now: Date) throws(ControllerError) -> LockAcquisition {
        try write { db in
            let existing = try Self.lock(app: request.app, environment: request.environment, db)
            // A live lease is held whatever rollout id asks: a `resume` or `abort` of the same
            // rollout from another process would otherwise drive it alongside its controller.
            if let existing, existing.expiresAt > now {
                return .held(existing)
            }
            return try Self.install(request, replacing: existing, detail: existing.map { existing in
                "the lease of rollout \(existing.rolloutID) (\(existing.owner), pid \(existing.pid), term \(existing.term)) ran out at \(RFC3339.format(existing.expiresAt))"
            }, now: now, db)
        }
    }

    public func takeOverLock(_ request: LockRequest, from holder: RolloutLock, reason: String, now: Date) throws(ControllerError) -> LockAcquisition {
        try write { db in
            let existing = try Self.lock(app: request.app, environment: request.environment, db)
            // Compare and swap on the term: if the lock moved since `holder` was read, the
            // reason given no longer describes whoever holds it now.
            if let existing, existing.term != holder.term, existing.expiresAt > now {
                return .held(existing)
            }
            return try Self.install(request, replacing: existing, detail: existing.map { existing in
                "rollout \(existing.rolloutID) (\(existing.owner), pid \(existing.pid), term \(existing.term)): \(reason)"
            }, now: now, db)
        }
    }

    /// Writes `request` as the holder under a new term, recording an acquisition or (when
    /// `existing` is replaced) a takeover with `detail`.
    static func install(_ request: LockRequest, replacing existing: RolloutLock?, detail: String?, now: Date, _ db: Database) throws -> LockAcquisition {
        let term = try Self.nextTerm(app: request.app, environment: request.environment, after: existing?.term ?? 0, db)
        try db.execute(
            sql: """
                INSERT OR REPLACE INTO locks (app, environment, rolloutID, owner, pid, acquiredAt, renewedAt, expiresAt, term)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [request.app, request.environment, request.rolloutID, request.owner, request.pid,
                        now.timeIntervalSince1970, now.timeIntervalSince1970, now.addingTimeInterval(request.lease).timeIntervalSince1970, term])
        if let existing {
            try Self.lockEvent(
                db, now, request.app, request.environment, "taken_over", request.rolloutID, request.owner, "\(detail ?? ""); term \(term)")
            return .tookOver(existing, term: term)
        }
        try Self.lockEvent(db, now, request.app, request.environment, "acquired", request.rolloutID, request.owner, "term \(term)")
        return .acquired(term: term)
    }

    public func renewLock(app: String, environment: String, rolloutID: String, term: Int, lease: TimeInterval, now: Date) throws(ControllerError) -> Bool {
        try write { db in
            try db.execute(
                sql: "UPDATE locks SET renewedAt = ?, expiresAt = ? WHERE app = ? AND environment = ? AND rolloutID = ? AND term = ?",
                arguments: [now.timeIntervalSince1970, now.addingTimeInterval(lease).timeIntervalSince1970, app, environment, rolloutID, term])
            return db.changesCount == 1
        }
    }

    public func releaseLock(app: String, environment: String, rolloutID: String, term: Int, now: Date) throws(ControllerError) {
        try write { db in
            try db.execute(
                sql: "DELETE FROM locks WHERE app = ? AND environment = ? AND rolloutID = ? AND term = ?",
                arguments: [app, environment, rolloutID, term])
            if db.changesCount == 1 {
                try Self.lockEvent(db, now, app, environment, "released", rolloutID, ControllerActor.current, "term \(term)")
            }
        }
    }

    public func breakLock(app: String, environment: String, actor: String, reason: String, now: Date) throws(ControllerError) -> RolloutLock? {
        try write { db in
            guard let existing = try Self.lock(app: app, environment: environment, db) else { return nil }
            try db.execute(sql: "DELETE FROM locks WHERE app = ? AND environment = ?", arguments: [app, environment])
            try Self.lockEvent(
                db, now, app, environment, "broken", existing.rolloutID, actor,
                "\(reason) (held by \(existing.owner), pid \(existing.pid), since \(RFC3339.format(existing.acquiredAt)))")
            return existing
        }
    }

    public func locks() throws(ControllerError) -> [RolloutLock] {
        try read { db in try Row.fetchAll(db, sql: "SELECT * FROM locks ORDER BY app, environment").map(Self.lock) }
    }

    public func lockEvents(app: String?) throws(ControllerError) -> [LockEvent] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM lock_events WHERE (? IS NULL OR app = ?) ORDER BY id", arguments: [app, app]).map { row in
                LockEvent(time: Date(timeIntervalSince1970: row["time"]), app: row["app"], environment: row["environment"],
                          action: row["action"], rolloutID: row["rolloutID"], actor: row["actor"], detail: row["detail"])
            }
        }
    }

    static func lock(app: String, environment: String, _ db: Database) throws -> RolloutLock? {
        try Row.fetchOne(db, sql: "SELECT * FROM locks WHERE app = ? AND environment = ?", arguments: [app, environment]).map(lock)
    }

    static func lock(_ row: Row) -> RolloutLock {
        RolloutLock(
            app: row["app"], environment: row["environment"], rolloutID: row["rolloutID"], owner: row["owner"],
            pid: Int32(row["pid"] as Int64), acquiredAt: Date(timeIntervalSince1970: row["acquiredAt"]),
            renewedAt: Date(timeIntervalSince1970: row["renewedAt"]), expiresAt: Date(timeIntervalSince1970: row["expiresAt"]),
            term: row["term"])
    }

    /// The next term for this app and environment: above the last one handed out and above
    /// the current holder's (a row from before the v4 migration has term 0).
    static func nextTerm(app: String, environment: String, after current: Int, _ db: Database) throws -> Int {
        let last = try Int.fetchOne(db, sql: "SELECT term FROM lock_terms WHERE app = ? AND environment = ?", arguments: [app, environment]) ?? 0
        let term = max(last, current) + 1
        try db.execute(
            sql: "INSERT OR REPLACE INTO lock_terms (app, environment, term) VALUES (?, ?, ?)", arguments: [app, environment, term])
        return term
    }

    static func lockEvent(_ db: Database, _ now: Date, _ app: String, _ environment: String, _ action: String, _ rolloutID: String?,
                          _ actor: String, _ detail: String?) throws {
        try db.execute(
            sql: "INSERT INTO lock_events (time, app, environment, action, rolloutID, actor, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
            arguments: [now.timeIntervalSince1970, app, environment, action, rolloutID, actor, detail])
    }
}
