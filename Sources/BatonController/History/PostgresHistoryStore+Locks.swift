import BatonProtocol
import Foundation
import PostgresNIO

/// Leased, fenced locks on the database's clock.
///
/// Every lock change for one app and environment first takes the row lock of its
/// `lock_terms` counter, so acquisitions and takeovers of one lock are serialised and read
/// the last term handed out; the decision itself (take it if free or expired, else leave
/// it) is one `INSERT … ON CONFLICT DO UPDATE … WHERE` statement evaluated against the
/// latest row with `statement_timestamp()`. The callers' `now` is not used for leases: two
/// runners whose clocks disagree still agree on whether a lease ran out.
extension PostgresHistoryStore {
    /// Seconds since 1970 on the database's clock, as the store keeps times.
    static let databaseNow = "extract(epoch FROM statement_timestamp())::double precision"

    public func acquireLock(_ request: LockRequest, now: Date) throws(ControllerError) -> LockAcquisition {
        try guarded {
            try sql.transaction { sql in
                try install(request, unless: "locks.expires_at > \(Self.databaseNow)", sql) { existing in
                    "the lease of rollout \(existing.rolloutID) (\(existing.owner), pid \(existing.pid), term \(existing.term)) ran out at \(RFC3339.format(existing.expiresAt))"
                }
            }
        }
    }

    public func takeOverLock(_ request: LockRequest, from holder: RolloutLock, reason: String, now: Date) throws(ControllerError) -> LockAcquisition {
        try guarded {
            try sql.transaction { sql in
                // Compare and swap on the term: if the lock moved since `holder` was read, the
                // reason given no longer describes whoever holds it now.
                try install(request, unless: "locks.term <> \(holder.term) AND locks.expires_at > \(Self.databaseNow)", sql) { existing in
                    "rollout \(existing.rolloutID) (\(existing.owner), pid \(existing.pid), term \(existing.term)): \(reason)"
                }
            }
        }
    }

    /// Makes `request` the holder under a new term unless the current row satisfies `held`
    /// (SQL over `locks`), recording an acquisition, or a takeover described by `detail`.
    private func install(
        _ request: LockRequest, unless held: String, _ sql: PostgresSQL.Statements, detail: (RolloutLock) -> String
    ) throws -> LockAcquisition {
        // Serialises every acquisition and takeover of this lock, and reads the last term.
        let last = try sql.run("""
            INSERT INTO lock_terms (app, environment, term) VALUES (\(request.app), \(request.environment), 0)
            ON CONFLICT (app, environment) DO UPDATE SET term = lock_terms.term RETURNING term
            """).rows.first.map { try $0.decode(Int.self) } ?? 0
        let existing = try Self.lock(app: request.app, environment: request.environment, sql)
        let now = Self.databaseNow
        // One statement decides: the WHERE sees the row as it is now, whatever was read above;
        // the times come from the database's clock in the same statement.
        let upsert: PostgresQuery = """
            INSERT INTO locks (app, environment, rollout_id, owner, pid, acquired_at, renewed_at, expires_at, term)
            VALUES (\(request.app), \(request.environment), \(request.rolloutID), \(request.owner), \(Int64(request.pid)),
                    \(unescaped: now), \(unescaped: now), \(unescaped: now) + \(request.lease), \(last + 1))
            ON CONFLICT (app, environment) DO UPDATE SET rollout_id = EXCLUDED.rollout_id, owner = EXCLUDED.owner,
                pid = EXCLUDED.pid, acquired_at = EXCLUDED.acquired_at, renewed_at = EXCLUDED.renewed_at,
                expires_at = EXCLUDED.expires_at, term = GREATEST(EXCLUDED.term, locks.term + 1)
                WHERE NOT (\(unescaped: held))
            RETURNING term, (xmax = 0) AS inserted
            """
        guard let won = try sql.run(upsert).rows.first else {
            // A holder releasing right now still held it when the statement ran.
            guard let holder = try Self.lock(app: request.app, environment: request.environment, sql) ?? existing else {
                throw ControllerError(.stateError, "the lock of \(request.app) in \(request.environment) vanished while held")
            }
            return .held(holder)
        }
        let (term, inserted) = try won.decode((Int, Bool).self)
        try sql.run("UPDATE lock_terms SET term = \(term) WHERE app = \(request.app) AND environment = \(request.environment)")
        if let existing, !inserted {
            try Self.lockEvent(sql, request.app, request.environment, "taken_over", request.rolloutID, request.owner,
                               "\(detail(existing)); term \(term)", term: term)
            return .tookOver(existing, term: term)
        }
        try Self.lockEvent(sql, request.app, request.environment, "acquired", request.rolloutID, request.owner, "term \(term)", term: term)
        return .acquired(term: term)
    }

    public func renewLock(app: String, environment: String, rolloutID: String, term: Int, lease: TimeInterval, now: Date) throws(ControllerError) -> Bool {
        try guarded {
            try sql.run("""
                UPDATE locks SET renewed_at = \(unescaped: Self.databaseNow), expires_at = \(unescaped: Self.databaseNow) + \(lease)
                WHERE app = \(app) AND environment = \(environment) AND rollout_id = \(rolloutID) AND term = \(term)
                """).metadata.rows == 1
        }
    }

    public func releaseLock(app: String, environment: String, rolloutID: String, term: Int, now: Date) throws(ControllerError) {
        try guarded {
            try sql.transaction { sql in
                let deleted = try sql.run("""
                    DELETE FROM locks WHERE app = \(app) AND environment = \(environment) AND rollout_id = \(rolloutID) AND term = \(term)
                    """)
                if deleted.metadata.rows == 1 {
                    try Self.lockEvent(sql, app, environment, "released", rolloutID, ControllerActor.current, "term \(term)", term: term)
                }
            }
        }
    }

    public func breakLock(app: String, environment: String, actor: String, reason: String, now: Date) throws(ControllerError) -> RolloutLock? {
        try guarded {
            try sql.transaction { sql in
                guard let existing = try sql.run("""
                    DELETE FROM locks WHERE app = \(app) AND environment = \(environment) RETURNING *
                    """).rows.first.map(Self.lock) else { return nil }
                try Self.lockEvent(
                    sql, app, environment, "broken", existing.rolloutID, actor,
                    "\(reason) (held by \(existing.owner), pid \(existing.pid), since \(RFC3339.format(existing.acquiredAt)))",
                    term: existing.term)
                return existing
            }
        }
    }

    public func locks() throws(ControllerError) -> [RolloutLock] {
        try guarded { try sql.run("SELECT * FROM locks ORDER BY app, environment").rows.map(Self.lock) }
    }

    public func lockEvents(app: String?) throws(ControllerError) -> [LockEvent] {
        try guarded {
            try sql.run("""
                SELECT time, app, environment, action, rollout_id, actor, detail FROM lock_events
                WHERE (\(app)::text IS NULL OR app = \(app)) ORDER BY id
                """).rows.map { row in
                let (time, app, environment, action, rolloutID, actor, detail) =
                    try row.decode((Double, String, String, String, String?, String, String?).self)
                return LockEvent(time: Date(timeIntervalSince1970: time), app: app, environment: environment, action: action,
                                 rolloutID: rolloutID, actor: actor, detail: detail)
            }
        }
    }

    static func lock(app: String, environment: String, _ sql: PostgresSQL.Statements) throws -> RolloutLock? {
        try sql.run("SELECT * FROM locks WHERE app = \(app) AND environment = \(environment)").rows.first.map(lock)
    }

    static func lock(_ row: PostgresRow) throws -> RolloutLock {
        let row = row.makeRandomAccess()
        return RolloutLock(
            app: try row["app"].decode(String.self), environment: try row["environment"].decode(String.self),
            rolloutID: try row["rollout_id"].decode(String.self), owner: try row["owner"].decode(String.self),
            pid: Int32(try row["pid"].decode(Int64.self)),
            acquiredAt: Date(timeIntervalSince1970: try row["acquired_at"].decode(Double.self)),
            renewedAt: Date(timeIntervalSince1970: try row["renewed_at"].decode(Double.self)),
            expiresAt: Date(timeIntervalSince1970: try row["expires_at"].decode(Double.self)),
            term: try row["term"].decode(Int.self))
    }

    /// Lock events carry the database's time, like the leases they describe.
    static func lockEvent(_ sql: PostgresSQL.Statements, _ app: String, _ environment: String, _ action: String, _ rolloutID: String?,
                          _ actor: String, _ detail: String?, term: Int) throws {
        try sql.run("""
            INSERT INTO lock_events (time, app, environment, action, rollout_id, actor, detail, term)
            VALUES (\(unescaped: databaseNow), \(app), \(environment), \(action), \(rolloutID), \(actor), \(detail), \(term))
            """)
    }
}
