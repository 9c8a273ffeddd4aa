import BatonProtocol
import Foundation
import GRDB
import PostgresNIO

/// `baton history migrate --to postgres`: copies one machine's SQLite history into the
/// shared PostgreSQL store, in one transaction, so a team that outgrows SQLite keeps its
/// past. Idempotent: what the database already has (a rollout by id, a release by serial,
/// an approval by key, an audit head or lock event that is equal) is left as it is, so
/// running it again, or for a second machine's file, adds only what is new. Held locks
/// are not copied (they belong to rollouts running on the old store); the terms handed
/// out are, so a term never repeats.
public enum HistoryCopy {
    /// What was copied, and what the database had already, per kind of record.
    public struct Counts: Sendable, Equatable, Codable {
        public var copied: [String: Int] = [:]
        public var present: [String: Int] = [:]

        mutating func count(_ kind: String, copied wasCopied: Bool) {
            if wasCopied { copied[kind, default: 0] += 1 } else { present[kind, default: 0] += 1 }
        }

        /// The kinds, in the order they are copied.
        public static let kinds = ["rollouts", "events", "resume", "auditHeads", "lockEvents", "lockTerms", "releases", "approvals", "serials",
                                   "drills", "receipts", "envelopes"]
    }

    /// Everything of the SQLite store.
    struct Snapshot {
        var rollouts: [RolloutRecord] = []
        var events: [String: [RolloutEvent]] = [:]
        var resume: [RolloutResumeInfo] = []
        var auditHeads: [SeenAuditHead] = []
        var lockEvents: [LockEvent] = []
        var lockTerms: [(app: String, environment: String, term: Int)] = []
        var releases: [RegisteredRelease] = []
        var approvals: [ReleaseApproval] = []
        var serials: [(app: String, environment: String, serial: UInt64)] = []
        var drills: [DrillRecord] = []
        /// Receipts as the store keeps them: the agent's signed JSON, copied as it is.
        var receipts: [(host: String, deploymentID: String, text: String, receivedAt: Double)] = []
        var envelopes: [SentEnvelope] = []
    }

    public static func copy(from source: SQLiteHistoryStore, to target: PostgresHistoryStore) throws(ControllerError) -> Counts {
        let snapshot = try source.snapshot()
        return try target.guarded {
            try target.sql.transaction { sql in try write(snapshot, sql) }
        }
    }

    static func write(_ snapshot: Snapshot, _ sql: PostgresSQL.Statements) throws -> Counts {
        var counts = Counts()
        for rollout in snapshot.rollouts {
            let inserted = try sql.run("""
                INSERT INTO rollouts (id, app, release, serial, environment, strategy, actor, signers, owner, notes, source, started_at,
                    finished_at, outcome, exit_status, halted, halt_reason, revert_serial, break_glass, kind, issued_at)
                VALUES (\(rollout.id), \(rollout.app), \(rollout.release), \(Int64(rollout.serial)), \(rollout.environment),
                        \(rollout.strategy), \(rollout.actor), \(rollout.signers), \(rollout.owner), \(rollout.notes), \(rollout.source),
                        \(rollout.startedAt.timeIntervalSince1970), \(rollout.finishedAt?.timeIntervalSince1970), \(rollout.outcome?.rawValue),
                        \(rollout.exitStatus.map { Int64($0) }), \(rollout.halted), \(rollout.haltReason),
                        \(rollout.revertSerial.map { Int64($0) }), \(rollout.breakGlass), \(rollout.kind.rawValue),
                        \(rollout.issuedAt?.timeIntervalSince1970))
                ON CONFLICT (id) DO NOTHING
                """).metadata.rows == 1
            counts.count("rollouts", copied: inserted)
            // A rollout the database had came with its hosts and events already.
            guard inserted else { continue }
            for (position, host) in rollout.hosts.enumerated() {
                try PostgresHistoryStore.upsert(host, position: position, rolloutID: rollout.id, replacing: false, sql)
            }
            for event in snapshot.events[rollout.id] ?? [] {
                try sql.run("""
                    INSERT INTO rollout_events (rollout_id, time, type, host, phase, wave, deployment_id, message, error_code, error_message)
                    VALUES (\(event.rolloutID), \(event.time.timeIntervalSince1970), \(event.type.rawValue), \(event.host),
                            \(event.phase?.rawValue), \(event.wave), \(event.deploymentID), \(event.message), \(event.error?.code),
                            \(event.error?.message))
                    """)
                counts.count("events", copied: true)
            }
        }
        for info in snapshot.resume {
            let strategy = String(decoding: (try? BatonJSON.encode(info.strategy)) ?? Data("{}".utf8), as: UTF8.self)
            let inserted = try sql.run("""
                INSERT INTO rollout_resume (rollout_id, envelope, host_ids, strategy, artifact_file)
                VALUES (\(info.rolloutID), \(Data(info.envelope)), \(info.hostIDs), \(strategy), \(info.artifactFile))
                ON CONFLICT (rollout_id) DO NOTHING
                """).metadata.rows == 1
            counts.count("resume", copied: inserted)
        }
        for head in snapshot.auditHeads {
            let inserted = try sql.run("""
                INSERT INTO audit_heads (host, lines, hash, time, signature, seen_at, verdict)
                SELECT \(head.host), \(Int64(head.lines)), \(head.hash), \(head.time.timeIntervalSince1970), \(head.signature),
                       \(head.seenAt.timeIntervalSince1970), \(head.verdict)
                WHERE NOT EXISTS (SELECT 1 FROM audit_heads WHERE host = \(head.host) AND lines = \(Int64(head.lines))
                    AND hash = \(head.hash) AND seen_at = \(head.seenAt.timeIntervalSince1970) AND verdict = \(head.verdict))
                """).metadata.rows == 1
            counts.count("auditHeads", copied: inserted)
        }
        for event in snapshot.lockEvents {
            let inserted = try sql.run("""
                INSERT INTO lock_events (time, app, environment, action, rollout_id, actor, detail)
                SELECT \(event.time.timeIntervalSince1970), \(event.app), \(event.environment), \(event.action), \(event.rolloutID),
                       \(event.actor), \(event.detail)
                WHERE NOT EXISTS (SELECT 1 FROM lock_events WHERE time = \(event.time.timeIntervalSince1970) AND app = \(event.app)
                    AND environment = \(event.environment) AND action = \(event.action) AND actor = \(event.actor)
                    AND rollout_id IS NOT DISTINCT FROM \(event.rolloutID))
                """).metadata.rows == 1
            counts.count("lockEvents", copied: inserted)
        }
        for (app, environment, term) in snapshot.lockTerms {
            let raised = try sql.run("""
                INSERT INTO lock_terms (app, environment, term) VALUES (\(app), \(environment), \(term))
                ON CONFLICT (app, environment) DO UPDATE SET term = EXCLUDED.term WHERE lock_terms.term < EXCLUDED.term
                """).metadata.rows == 1
            counts.count("lockTerms", copied: raised)
        }
        for release in snapshot.releases {
            let inserted = try sql.run("""
                INSERT INTO releases (app, environment, serial, release, payload, payload_sha256, artifact_sha256, artifact_size,
                    artifact_url, artifact_holder, artifact_path, created_by, created_at)
                VALUES (\(release.app), \(release.environment), \(Int64(release.serial)), \(release.release), \(Data(release.payload)),
                        \(release.payloadSHA256), \(release.artifactSHA256), \(Int64(release.artifactSize)), \(release.artifactURL),
                        \(release.artifactHolder), \(release.artifactPath), \(release.createdBy), \(release.createdAt.timeIntervalSince1970))
                ON CONFLICT DO NOTHING
                """).metadata.rows == 1
            counts.count("releases", copied: inserted)
        }
        for approval in snapshot.approvals {
            // Only onto the same payload: a serial the database registered with other bytes keeps its own approvals.
            let inserted = try sql.run("""
                INSERT INTO release_approvals (app, environment, serial, keyid, signature, approved_by, approved_at)
                SELECT \(approval.app), \(approval.environment), \(Int64(approval.serial)), \(approval.keyid), \(Data(approval.signature)),
                       \(approval.approvedBy), \(approval.approvedAt.timeIntervalSince1970)
                WHERE EXISTS (SELECT 1 FROM releases WHERE app = \(approval.app) AND environment = \(approval.environment)
                    AND serial = \(Int64(approval.serial)) AND payload_sha256 = \(snapshot.payloadSHA256(of: approval)))
                ON CONFLICT DO NOTHING
                """).metadata.rows == 1
            counts.count("approvals", copied: inserted)
        }
        for (app, environment, serial) in snapshot.serials {
            let raised = try sql.run("""
                INSERT INTO serial_counters (app, environment, serial) VALUES (\(app), \(environment), \(Int64(serial)))
                ON CONFLICT (app, environment) DO UPDATE SET serial = EXCLUDED.serial WHERE serial_counters.serial < EXCLUDED.serial
                """).metadata.rows == 1
            counts.count("serials", copied: raised)
        }
        // Evidence and practice: a drill by id, a receipt per host and deployment, a revert
        // envelope per rollout and payload; what the database has already stays (a receipt
        // is never replaced).
        for drill in snapshot.drills {
            let inserted = try sql.run("""
                INSERT INTO drills (id, app, environment, started_at, outcome, record)
                VALUES (\(drill.id), \(drill.app), \(drill.environment), \(drill.startedAt.timeIntervalSince1970),
                        \(drill.outcome?.rawValue), \(try DrillRecord.encoded(drill)))
                ON CONFLICT (id) DO NOTHING
                """).metadata.rows == 1
            counts.count("drills", copied: inserted)
        }
        for receipt in snapshot.receipts {
            let inserted = try sql.run("""
                INSERT INTO receipts (host, deployment_id, receipt, received_at)
                VALUES (\(receipt.host), \(receipt.deploymentID), \(receipt.text), \(receipt.receivedAt))
                ON CONFLICT (host, deployment_id) DO NOTHING
                """).metadata.rows == 1
            counts.count("receipts", copied: inserted)
        }
        for envelope in snapshot.envelopes {
            let inserted = try sql.run("""
                INSERT INTO rollout_envelopes (rollout_id, payload_digest, role, envelope, sent_at)
                VALUES (\(envelope.rolloutID), \(envelope.payloadDigest), \(envelope.role.rawValue), \(Data(envelope.envelope)),
                        \(envelope.sentAt.timeIntervalSince1970))
                ON CONFLICT (rollout_id, payload_digest) DO NOTHING
                """).metadata.rows == 1
            counts.count("envelopes", copied: inserted)
        }
        return counts
    }
}

extension HistoryCopy.Snapshot {
    func payloadSHA256(of approval: ReleaseApproval) -> String {
        releases.first { $0.app == approval.app && $0.environment == approval.environment && $0.serial == approval.serial }?.payloadSHA256 ?? ""
    }
}

extension SQLiteHistoryStore {
    /// Every record of this store (for `HistoryCopy`); the copy is meant for a store no
    /// controller is writing to at the moment.
    func snapshot() throws(ControllerError) -> HistoryCopy.Snapshot {
        let ids = try read { db in try String.fetchAll(db, sql: "SELECT id FROM rollouts ORDER BY startedAt, id") }
        var snapshot = HistoryCopy.Snapshot()
        for id in ids {
            if let rollout = try rollout(id: id) { snapshot.rollouts.append(rollout) }
            snapshot.events[id] = try events(rolloutID: id)
            if let info = try resumeInfo(rolloutID: id) { snapshot.resume.append(info) }
            snapshot.envelopes += try envelopes(rolloutID: id)
        }
        snapshot.drills = try drills(app: nil, environment: nil, limit: Int.max).reversed()
        snapshot.receipts = try read { db in
            try Row.fetchAll(db, sql: "SELECT host, deploymentID, receipt, receivedAt FROM receipts ORDER BY receivedAt, host, deploymentID").map { row in
                (host: row["host"] as String, deploymentID: row["deploymentID"] as String, text: row["receipt"] as String,
                 receivedAt: row["receivedAt"] as Double)
            }
        }
        snapshot.lockEvents = try lockEvents(app: nil)
        snapshot.auditHeads = try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM audit_heads ORDER BY id").map { row in
                SeenAuditHead(
                    host: row["host"], lines: row["lines"], hash: row["hash"], time: Date(timeIntervalSince1970: row["time"]),
                    signature: row["signature"], seenAt: Date(timeIntervalSince1970: row["seenAt"]), verdict: row["verdict"])
            }
        }
        snapshot.lockTerms = try read { db in
            try Row.fetchAll(db, sql: "SELECT app, environment, term FROM lock_terms").map { row in
                (app: row["app"] as String, environment: row["environment"] as String, term: row["term"] as Int)
            }
        }
        snapshot.releases = try read { db in try Row.fetchAll(db, sql: "SELECT * FROM releases ORDER BY createdAt, serial").map(Self.registered) }
        snapshot.serials = try read { db in
            try Row.fetchAll(db, sql: "SELECT app, environment, serial FROM serial_counters").map { row in
                (app: row["app"] as String, environment: row["environment"] as String, serial: UInt64(row["serial"] as Int64))
            }
        }
        for release in snapshot.releases {
            snapshot.approvals += try approvals(app: release.app, environment: release.environment, serial: release.serial)
        }
        return snapshot
    }
}
