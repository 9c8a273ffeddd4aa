import Foundation
import PostgresNIO

/// The shared store's schema, as numbered migrations. Every change is a new migration
/// appended here, never an edit of an old one: controllers of different versions share
/// one database, and what was applied is kept in `baton_migrations`.
///
/// Times are `double precision` seconds since 1970 like the SQLite store's `REAL`s, so a
/// `Date` goes in and comes out unchanged; lease times are computed by the database from
/// its own clock.
enum PostgresMigrations {
    struct Migration {
        let id: Int
        let name: String
        let sql: [String]
    }

    /// Any fixed number: the key of the advisory lock that keeps two controllers from
    /// migrating the same database at once.
    static let advisoryLockKey = 0x6261_746F_6E00  // "baton"

    static let all: [Migration] = [
        Migration(id: 1, name: "history and fenced locks", sql: [
            """
            CREATE TABLE rollouts (
                id text PRIMARY KEY, app text NOT NULL, release text NOT NULL, serial bigint NOT NULL,
                environment text NOT NULL, strategy text NOT NULL, actor text NOT NULL, signers text[] NOT NULL,
                owner text, notes text, source text, started_at double precision NOT NULL, finished_at double precision,
                outcome text, exit_status bigint, halted boolean NOT NULL DEFAULT false, halt_reason text, revert_serial bigint)
            """,
            "CREATE INDEX rollouts_by_app ON rollouts (app, started_at)",
            """
            CREATE TABLE rollout_hosts (
                rollout_id text NOT NULL REFERENCES rollouts (id) ON DELETE CASCADE, position bigint NOT NULL,
                host text NOT NULL, phase text NOT NULL, wave text, previous_release text, deployment_id text,
                revert_deployment_id text, error_code text, error_message text, needs_attention boolean NOT NULL DEFAULT false,
                started_at double precision, finished_at double precision, PRIMARY KEY (rollout_id, host))
            """,
            // `sequence` orders a rollout's events; a bigserial, because MAX()+1 races between writers.
            """
            CREATE TABLE rollout_events (
                sequence bigserial PRIMARY KEY, rollout_id text NOT NULL REFERENCES rollouts (id) ON DELETE CASCADE,
                time double precision NOT NULL, type text NOT NULL, host text, phase text, wave text, deployment_id text,
                message text NOT NULL, error_code text, error_message text)
            """,
            "CREATE INDEX rollout_events_by_rollout ON rollout_events (rollout_id, sequence)",
            """
            CREATE TABLE rollout_resume (
                rollout_id text PRIMARY KEY REFERENCES rollouts (id) ON DELETE CASCADE, envelope bytea NOT NULL,
                host_ids text[] NOT NULL, strategy text NOT NULL, artifact_file text)
            """,
            """
            CREATE TABLE audit_heads (
                id bigserial PRIMARY KEY, host text NOT NULL, lines bigint NOT NULL, hash text NOT NULL,
                time double precision NOT NULL, signature text NOT NULL, seen_at double precision NOT NULL, verdict text NOT NULL)
            """,
            "CREATE INDEX audit_heads_by_host ON audit_heads (host, id)",
            """
            CREATE TABLE locks (
                app text NOT NULL, environment text NOT NULL, rollout_id text NOT NULL, owner text NOT NULL,
                pid bigint NOT NULL, acquired_at double precision NOT NULL, renewed_at double precision NOT NULL,
                expires_at double precision NOT NULL, term bigint NOT NULL, PRIMARY KEY (app, environment))
            """,
            // The last term handed out per app and environment: it outlives the lock row
            // (release and break delete it), so terms never repeat.
            """
            CREATE TABLE lock_terms (
                app text NOT NULL, environment text NOT NULL, term bigint NOT NULL, PRIMARY KEY (app, environment))
            """,
            """
            CREATE TABLE lock_events (
                id bigserial PRIMARY KEY, time double precision NOT NULL, app text NOT NULL, environment text NOT NULL,
                action text NOT NULL, rollout_id text, actor text NOT NULL, detail text, term bigint)
            """,
            "CREATE INDEX lock_events_by_app ON lock_events (app, id)",
        ]),
        // A rollout that broke glass during a change freeze (SQLite's v5-break-glass).
        Migration(id: 2, name: "break glass", sql: [
            "ALTER TABLE rollouts ADD COLUMN break_glass boolean NOT NULL DEFAULT false",
        ]),
        // Releases, approvals and serial counters (SQLite's v6-releases; PostgresHistoryStore+Releases.swift).
        Migration(id: 3, name: "releases and approvals", sql: PostgresHistoryStore.releasesMigration),
        // Drills, and a rollout's kind and manifest issue time for delivery metrics
        // (SQLite's v7-drills; PostgresHistoryStore+Drills.swift).
        Migration(id: 4, name: "drills", sql: [
            "ALTER TABLE rollouts ADD COLUMN kind text NOT NULL DEFAULT 'rollout'",
            "ALTER TABLE rollouts ADD COLUMN issued_at double precision",
            """
            CREATE TABLE drills (
                id text PRIMARY KEY, app text NOT NULL, environment text NOT NULL, started_at double precision NOT NULL,
                outcome text, record text NOT NULL)
            """,
            "CREATE INDEX drills_by_app ON drills (app, environment, started_at)",
        ]),
        // Agents' signed receipts and the revert envelopes rollouts signed (SQLite's v8-receipts).
        Migration(id: 5, name: "receipts", sql: PostgresHistoryStore.receiptsMigration),
    ]

    /// Applies the migrations this database lacks, in one transaction under the advisory
    /// lock: a second controller starting at the same moment waits, then finds them applied.
    static func apply(_ connection: PostgresSQL) throws {
        try connection.transaction { sql in
            try sql.run("SELECT pg_advisory_xact_lock(\(advisoryLockKey))")
            try sql.run("""
                CREATE TABLE IF NOT EXISTS baton_migrations (
                    id bigint PRIMARY KEY, name text NOT NULL, applied_at double precision NOT NULL)
                """)
            let applied = Set(try sql.run("SELECT id FROM baton_migrations").rows.map { try $0.decode(Int.self) })
            for migration in all where !applied.contains(migration.id) {
                for statement in migration.sql { try sql.run(PostgresQuery(unsafeSQL: statement)) }
                try sql.run("""
                    INSERT INTO baton_migrations (id, name, applied_at)
                    VALUES (\(migration.id), \(migration.name), extract(epoch FROM now())::double precision)
                    """)
            }
        }
    }
}

/// A migration a store has applied, for `baton history migrations`.
public struct AppliedMigration: Sendable, Equatable, Codable {
    /// Its position in the store's list, from 1.
    public var id: Int
    public var name: String
    /// When it was applied (PostgreSQL records it; GRDB's SQLite migrations do not).
    public var appliedAt: Date?

    public init(id: Int, name: String, appliedAt: Date?) {
        self.id = id
        self.name = name
        self.appliedAt = appliedAt
    }
}
