import BatonProtocol
import Foundation
import GRDB

/// Drills and rollout kinds in the SQLite store (migration `v7-drills`). A drill is kept
/// whole as JSON beside the columns it is looked up by.
extension SQLiteHistoryStore: DeliveryHistory {
    public func noteRollout(id: String, kind: RolloutKind, issuedAt: Date?) throws(ControllerError) {
        try write { db in
            try db.execute(
                sql: "UPDATE rollouts SET kind = ?, issuedAt = ? WHERE id = ?",
                arguments: [kind.rawValue, issuedAt?.timeIntervalSince1970, id])
        }
    }

    public func saveDrill(_ drill: DrillRecord) throws(ControllerError) {
        let record = try DrillRecord.encoded(drill)
        try write { db in
            try db.execute(
                sql: "INSERT OR REPLACE INTO drills (id, app, environment, startedAt, outcome, record) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [drill.id, drill.app, drill.environment, drill.startedAt.timeIntervalSince1970, drill.outcome?.rawValue, record])
        }
    }

    public func drills(app: String?, environment: String?, limit: Int) throws(ControllerError) -> [DrillRecord] {
        let texts = try read { db in
            try String.fetchAll(
                db, sql: """
                    SELECT record FROM drills WHERE (? IS NULL OR app = ?) AND (? IS NULL OR environment = ?)
                    ORDER BY startedAt DESC, id DESC LIMIT ?
                    """,
                arguments: [app, app, environment, environment, limit])
        }
        var drills: [DrillRecord] = []
        for text in texts { drills.append(try DrillRecord.decoded(text)) }
        return drills
    }

    public func lastSuccessfulDrill(app: String, environment: String) throws(ControllerError) -> DrillRecord? {
        let text = try read { db in
            try String.fetchOne(
                db, sql: "SELECT record FROM drills WHERE app = ? AND environment = ? AND outcome = ? ORDER BY startedAt DESC, id DESC LIMIT 1",
                arguments: [app, environment, DrillRecord.Outcome.succeeded.rawValue])
        }
        guard let text else { return nil }
        return try DrillRecord.decoded(text)
    }
}

extension DrillRecord {
    /// The stored form: the record's own JSON.
    static func encoded(_ drill: DrillRecord) throws(ControllerError) -> String {
        do { return String(decoding: try BatonJSON.encode(drill), as: UTF8.self) } catch {
            throw ControllerError(.stateError, "cannot encode drill \(drill.id): \(error)")
        }
    }

    static func decoded(_ text: String) throws(ControllerError) -> DrillRecord {
        do { return try BatonJSON.decode(DrillRecord.self, from: Data(text.utf8)) } catch {
            throw ControllerError(.stateError, "a drill record in the history cannot be read: \(error)")
        }
    }
}
