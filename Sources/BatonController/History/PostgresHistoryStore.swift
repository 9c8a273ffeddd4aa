import BatonProtocol
import Foundation
import PostgresNIO

/// The history and the locks in a shared PostgreSQL database, for teams whose controllers
/// (CI runners, operators' laptops) must see one history and hold one lock per app and
/// environment. The same semantics as ``SQLiteHistoryStore``, with one difference that is
/// the point of it: lease times come from the database's clock, not the callers' `now`, so
/// clock skew between machines cannot make a live lock look expired (docs/history-store.md).
public final class PostgresHistoryStore: HistoryStore {
    let sql: PostgresSQL
    public let configuration: PostgresStoreConfiguration

    /// Connects and applies the migrations the database lacks.
    public init(_ configuration: PostgresStoreConfiguration) throws(ControllerError) {
        self.configuration = configuration
        sql = try PostgresSQL(configuration)
        try guarded { try PostgresMigrations.apply(sql) }
    }

    /// What `baton history migrations` shows.
    public func migrations() throws(ControllerError) -> [AppliedMigration] {
        try guarded {
            try sql.run("SELECT id, name, applied_at FROM baton_migrations ORDER BY id").rows.map { row in
                let (id, name, time) = try row.decode((Int, String, Double).self)
                return AppliedMigration(id: id, name: name, appliedAt: Date(timeIntervalSince1970: time))
            }
        }
    }

    /// Every failure of the database is a `state_error` naming it.
    func guarded<T>(_ body: () throws -> T) throws(ControllerError) -> T {
        do { return try body() } catch let error as ControllerError {
            throw error
        } catch {
            throw ControllerError(.stateError, "the history database \(configuration.description) failed: \(PostgresSQL.describe(error))")
        }
    }

    // MARK: Rollouts

    public func rolloutStarted(_ rollout: RolloutRecord) throws(ControllerError) {
        try guarded {
            try sql.transaction { sql in
                try sql.run("""
                    INSERT INTO rollouts (id, app, release, serial, environment, strategy, actor, signers, owner, notes, source, started_at, break_glass)
                    VALUES (\(rollout.id), \(rollout.app), \(rollout.release), \(Int64(rollout.serial)), \(rollout.environment),
                            \(rollout.strategy), \(rollout.actor), \(rollout.signers), \(rollout.owner), \(rollout.notes),
                            \(rollout.source), \(rollout.startedAt.timeIntervalSince1970), \(rollout.breakGlass))
                    ON CONFLICT (id) DO UPDATE SET finished_at = NULL, outcome = NULL, exit_status = NULL, halted = false, halt_reason = NULL
                    """)
                // A resumed rollout keeps what its hosts already reached.
                for (position, host) in rollout.hosts.enumerated() {
                    try Self.upsert(host, position: position, rolloutID: rollout.id, replacing: false, sql)
                }
            }
        }
    }

    public func record(_ event: RolloutEvent) throws(ControllerError) {
        try record([event])
    }

    /// Events in one transaction, in order, committed without waiting for the server's WAL
    /// flush (`synchronous_commit` off for this transaction only): as with SQLite, a crash
    /// of the server can take back the last events of a rollout, never half of a
    /// transaction, and the rollout's end record, committed the usual way, takes them along.
    public func record(_ events: [RolloutEvent]) throws(ControllerError) {
        guard !events.isEmpty else { return }
        try guarded {
            try sql.transaction { sql in
                try sql.run("SET LOCAL synchronous_commit TO OFF")
                for event in events {
                    try sql.run("""
                        INSERT INTO rollout_events (rollout_id, time, type, host, phase, wave, deployment_id, message, error_code, error_message)
                        VALUES (\(event.rolloutID), \(event.time.timeIntervalSince1970), \(event.type.rawValue), \(event.host),
                                \(event.phase?.rawValue), \(event.wave), \(event.deploymentID), \(event.message), \(event.error?.code),
                                \(event.error?.message))
                        """)
                    if let host = event.host, let phase = event.phase {
                        let deploymentID = phase == .reverting ? nil : event.deploymentID
                        try sql.run("""
                            UPDATE rollout_hosts SET phase = \(phase.rawValue), deployment_id = COALESCE(deployment_id, \(deploymentID))
                            WHERE rollout_id = \(event.rolloutID) AND host = \(host)
                            """)
                    }
                }
            }
        }
    }

    public func rolloutFinished(_ summary: RolloutSummary) throws(ControllerError) {
        try guarded {
            try sql.transaction { sql in
                try sql.run("""
                    UPDATE rollouts SET finished_at = \(summary.finishedAt.timeIntervalSince1970), outcome = \(summary.outcome.rawValue),
                        exit_status = \(Int64(summary.exitStatus)), halted = \(summary.halted), halt_reason = \(summary.haltReason),
                        revert_serial = \(summary.revertSerial.map { Int64($0) })
                    WHERE id = \(summary.rolloutID)
                    """)
                for (position, host) in summary.hosts.enumerated() {
                    try Self.upsert(host, position: position, rolloutID: summary.rolloutID, replacing: true, sql)
                }
            }
        }
    }

    public func rolloutAbandoned(id: String, reason: String, now: Date) throws(ControllerError) -> Bool {
        try guarded {
            let result = try sql.run("""
                UPDATE rollouts SET finished_at = \(now.timeIntervalSince1970), outcome = \(RolloutOutcome.abandoned.rawValue),
                    exit_status = \(Int64(RolloutOutcome.abandoned.exitStatus)), halted = true, halt_reason = \(reason)
                WHERE id = \(id) AND outcome IS NULL
                """)
            return result.metadata.rows == 1
        }
    }

    /// `replacing: false` keeps a host row that exists (a resumed rollout's progress).
    static func upsert(_ host: HostResult, position: Int, rolloutID: String, replacing: Bool, _ sql: PostgresSQL.Statements) throws {
        var query: PostgresQuery = """
            INSERT INTO rollout_hosts (rollout_id, position, host, phase, wave, previous_release, deployment_id,
                revert_deployment_id, error_code, error_message, needs_attention, started_at, finished_at)
            VALUES (\(rolloutID), \(position), \(host.host), \(host.phase.rawValue), \(host.wave), \(host.previousRelease),
                    \(host.deploymentID), \(host.revertDeploymentID), \(host.error?.code), \(host.error?.message), \(host.needsAttention),
                    \(host.startedAt?.timeIntervalSince1970), \(host.finishedAt?.timeIntervalSince1970))
            """
        query.sql += replacing
            ? """
             ON CONFLICT (rollout_id, host) DO UPDATE SET position = EXCLUDED.position, phase = EXCLUDED.phase, wave = EXCLUDED.wave,
                previous_release = EXCLUDED.previous_release, deployment_id = EXCLUDED.deployment_id,
                revert_deployment_id = EXCLUDED.revert_deployment_id, error_code = EXCLUDED.error_code,
                error_message = EXCLUDED.error_message, needs_attention = EXCLUDED.needs_attention,
                started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at
            """
            : " ON CONFLICT (rollout_id, host) DO NOTHING"
        try sql.run(query)
    }

    public func rollouts(app: String?, limit: Int) throws(ControllerError) -> [RolloutRecord] {
        try guarded {
            try sql.transaction { sql in
                try sql.run("""
                    SELECT * FROM rollouts WHERE (\(app)::text IS NULL OR app = \(app))
                    ORDER BY started_at DESC, id DESC LIMIT \(limit)
                    """).rows.map { try Self.rollout($0, sql) }
            }
        }
    }

    public func rollout(id: String) throws(ControllerError) -> RolloutRecord? {
        try guarded {
            try sql.transaction { sql in
                try sql.run("SELECT * FROM rollouts WHERE id = \(id)").rows.first.map { try Self.rollout($0, sql) }
            }
        }
    }

    static func rollout(_ row: PostgresRow, _ sql: PostgresSQL.Statements) throws -> RolloutRecord {
        let row = row.makeRandomAccess()
        let id = try row["id"].decode(String.self)
        var record = RolloutRecord(
            id: id, app: try row["app"].decode(String.self), release: try row["release"].decode(String.self),
            serial: UInt64(try row["serial"].decode(Int64.self)), environment: try row["environment"].decode(String.self),
            strategy: try row["strategy"].decode(String.self), actor: try row["actor"].decode(String.self),
            signers: try row["signers"].decode([String].self), owner: try row["owner"].decode(String?.self),
            notes: try row["notes"].decode(String?.self), source: try row["source"].decode(String?.self),
            startedAt: Date(timeIntervalSince1970: try row["started_at"].decode(Double.self)), hosts: [])
        record.finishedAt = try row["finished_at"].decode(Double?.self).map { Date(timeIntervalSince1970: $0) }
        record.outcome = try row["outcome"].decode(String?.self).flatMap(RolloutOutcome.init(rawValue:))
        record.exitStatus = try row["exit_status"].decode(Int64?.self).map { Int32($0) }
        record.halted = try row["halted"].decode(Bool.self)
        record.haltReason = try row["halt_reason"].decode(String?.self)
        record.revertSerial = try row["revert_serial"].decode(Int64?.self).map { UInt64($0) }
        record.breakGlass = try row["break_glass"].decode(Bool.self)
        record.kind = try row["kind"].decode(String?.self).flatMap(RolloutKind.init(rawValue:)) ?? .rollout
        record.issuedAt = try row["issued_at"].decode(Double?.self).map { Date(timeIntervalSince1970: $0) }
        record.hosts = try sql.run("SELECT * FROM rollout_hosts WHERE rollout_id = \(id) ORDER BY position").rows.map { row in
            let row = row.makeRandomAccess()
            var host = HostResult(host: try row["host"].decode(String.self), phase: HostPhase(rawValue: try row["phase"].decode(String.self)) ?? .pending)
            host.wave = try row["wave"].decode(String?.self)
            host.previousRelease = try row["previous_release"].decode(String?.self)
            host.deploymentID = try row["deployment_id"].decode(String?.self)
            host.revertDeploymentID = try row["revert_deployment_id"].decode(String?.self)
            if let code = try row["error_code"].decode(String?.self) {
                host.error = ErrorInfo(code: code, message: try row["error_message"].decode(String?.self) ?? "")
            }
            host.needsAttention = try row["needs_attention"].decode(Bool.self)
            host.startedAt = try row["started_at"].decode(Double?.self).map { Date(timeIntervalSince1970: $0) }
            host.finishedAt = try row["finished_at"].decode(Double?.self).map { Date(timeIntervalSince1970: $0) }
            return host
        }
        return record
    }

    public func events(rolloutID: String) throws(ControllerError) -> [RolloutEvent] {
        try guarded {
            try sql.run("SELECT * FROM rollout_events WHERE rollout_id = \(rolloutID) ORDER BY sequence").rows.map { row in
                let row = row.makeRandomAccess()
                let errorCode = try row["error_code"].decode(String?.self)
                let errorMessage = try row["error_message"].decode(String?.self)
                return RolloutEvent(
                    type: RolloutEvent.Kind(rawValue: try row["type"].decode(String.self)) ?? .host,
                    time: Date(timeIntervalSince1970: try row["time"].decode(Double.self)), rolloutID: rolloutID,
                    host: try row["host"].decode(String?.self),
                    phase: try row["phase"].decode(String?.self).flatMap(HostPhase.init(rawValue:)),
                    wave: try row["wave"].decode(String?.self), deploymentID: try row["deployment_id"].decode(String?.self),
                    message: try row["message"].decode(String.self),
                    error: errorCode.map { ErrorInfo(code: $0, message: errorMessage ?? "") })
            }
        }
    }

    // MARK: Audit heads and resume information

    public func recordAuditHead(_ head: SeenAuditHead) throws(ControllerError) {
        try guarded {
            try sql.run("""
                INSERT INTO audit_heads (host, lines, hash, time, signature, seen_at, verdict)
                VALUES (\(head.host), \(Int64(head.lines)), \(head.hash), \(head.time.timeIntervalSince1970), \(head.signature),
                        \(head.seenAt.timeIntervalSince1970), \(head.verdict))
                """)
        }
    }

    public func lastAuditHead(host: String) throws(ControllerError) -> SeenAuditHead? {
        try guarded {
            try sql.run("""
                SELECT host, lines, hash, time, signature, seen_at, verdict FROM audit_heads
                WHERE host = \(host) AND verdict IN ('first', 'consistent', 'accepted') ORDER BY id DESC LIMIT 1
                """).rows.first.map { row in
                let (host, lines, hash, time, signature, seenAt, verdict) = try row.decode((String, Int64, String, Double, String, Double, String).self)
                return SeenAuditHead(
                    host: host, lines: .init(lines), hash: hash, time: Date(timeIntervalSince1970: time), signature: signature,
                    seenAt: Date(timeIntervalSince1970: seenAt), verdict: verdict)
            }
        }
    }

    public func saveResumeInfo(_ info: RolloutResumeInfo) throws(ControllerError) {
        let strategy = String(decoding: (try? BatonJSON.encode(info.strategy)) ?? Data("{}".utf8), as: UTF8.self)
        try guarded {
            try sql.run("""
                INSERT INTO rollout_resume (rollout_id, envelope, host_ids, strategy, artifact_file)
                VALUES (\(info.rolloutID), \(Data(info.envelope)), \(info.hostIDs), \(strategy), \(info.artifactFile))
                ON CONFLICT (rollout_id) DO UPDATE SET envelope = EXCLUDED.envelope, host_ids = EXCLUDED.host_ids,
                    strategy = EXCLUDED.strategy, artifact_file = EXCLUDED.artifact_file
                """)
        }
    }

    public func resumeInfo(rolloutID: String) throws(ControllerError) -> RolloutResumeInfo? {
        let row = try guarded {
            try sql.run("SELECT envelope, host_ids, strategy, artifact_file FROM rollout_resume WHERE rollout_id = \(rolloutID)")
                .rows.first.map { try $0.decode((Data, [String], String, String?).self) }
        }
        guard let (envelope, hosts, strategyText, artifactFile) = row else { return nil }
        guard let strategy = try? BatonJSON.decode(RolloutStrategy.self, from: Data(strategyText.utf8)) else {
            throw ControllerError(.stateError, "the stored strategy of rollout \(rolloutID) cannot be read")
        }
        return RolloutResumeInfo(rolloutID: rolloutID, envelope: Array(envelope), hostIDs: hosts, strategy: strategy, artifactFile: artifactFile)
    }
}
