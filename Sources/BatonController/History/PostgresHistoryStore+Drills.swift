import BatonProtocol
import Foundation
import PostgresNIO

/// Drills and rollout kinds in the shared PostgreSQL store (migration 4, `drills`), the
/// same semantics as the SQLite store's.
extension PostgresHistoryStore: DeliveryHistory {
    public func noteRollout(id: String, kind: RolloutKind, issuedAt: Date?) throws(ControllerError) {
        try guarded {
            _ = try sql.run("UPDATE rollouts SET kind = \(kind.rawValue), issued_at = \(issuedAt?.timeIntervalSince1970) WHERE id = \(id)")
        }
    }

    public func saveDrill(_ drill: DrillRecord) throws(ControllerError) {
        let record = try DrillRecord.encoded(drill)
        try guarded {
            _ = try sql.run("""
                INSERT INTO drills (id, app, environment, started_at, outcome, record)
                VALUES (\(drill.id), \(drill.app), \(drill.environment), \(drill.startedAt.timeIntervalSince1970),
                        \(drill.outcome?.rawValue), \(record))
                ON CONFLICT (id) DO UPDATE SET outcome = EXCLUDED.outcome, record = EXCLUDED.record
                """)
        }
    }

    public func drills(app: String?, environment: String?, limit: Int) throws(ControllerError) -> [DrillRecord] {
        let texts = try guarded {
            try sql.run("""
                SELECT record FROM drills
                WHERE (\(app)::text IS NULL OR app = \(app)) AND (\(environment)::text IS NULL OR environment = \(environment))
                ORDER BY started_at DESC, id DESC LIMIT \(limit)
                """).rows.map { try $0.decode(String.self) }
        }
        var drills: [DrillRecord] = []
        for text in texts { drills.append(try DrillRecord.decoded(text)) }
        return drills
    }

    public func lastSuccessfulDrill(app: String, environment: String) throws(ControllerError) -> DrillRecord? {
        let text = try guarded {
            try sql.run("""
                SELECT record FROM drills WHERE app = \(app) AND environment = \(environment)
                    AND outcome = \(DrillRecord.Outcome.succeeded.rawValue)
                ORDER BY started_at DESC, id DESC LIMIT 1
                """).rows.first.map { try $0.decode(String.self) }
        }
        guard let text else { return nil }
        return try DrillRecord.decoded(text)
    }
}
