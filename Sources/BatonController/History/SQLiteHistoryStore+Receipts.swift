import BatonProtocol
import Foundation
import GRDB

/// Receipts and revert envelopes in the SQLite store (migration `v8-receipts`).
extension SQLiteHistoryStore: ReceiptStore {
    static let receiptsMigration = """
        CREATE TABLE receipts (
            host TEXT NOT NULL, deploymentID TEXT NOT NULL, receipt TEXT NOT NULL, receivedAt REAL NOT NULL,
            PRIMARY KEY (host, deploymentID));
        CREATE TABLE rollout_envelopes (
            rolloutID TEXT NOT NULL, payloadDigest TEXT NOT NULL, role TEXT NOT NULL, envelope BLOB NOT NULL,
            sentAt REAL NOT NULL, PRIMARY KEY (rolloutID, payloadDigest));
        """

    public func recordReceipt(_ receipt: CollectedReceipt) throws(ControllerError) {
        try write { db in
            try db.execute(
                sql: "INSERT OR IGNORE INTO receipts (host, deploymentID, receipt, receivedAt) VALUES (?, ?, ?, ?)",
                arguments: [receipt.host, receipt.deploymentID, receipt.storedText, receipt.receivedAt.timeIntervalSince1970])
        }
    }

    public func receipt(host: String, deploymentID: String) throws(ControllerError) -> CollectedReceipt? {
        let row = try read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM receipts WHERE host = ? AND deploymentID = ?", arguments: [host, deploymentID])
        }
        guard let row else { return nil }
        return try CollectedReceipt.fromStored(host: host, deploymentID: deploymentID, text: row["receipt"], receivedAt: row["receivedAt"])
    }

    public func recordEnvelope(_ envelope: SentEnvelope) throws(ControllerError) {
        try write { db in
            try db.execute(
                sql: "INSERT OR IGNORE INTO rollout_envelopes (rolloutID, payloadDigest, role, envelope, sentAt) VALUES (?, ?, ?, ?, ?)",
                arguments: [envelope.rolloutID, envelope.payloadDigest, envelope.role.rawValue, Data(envelope.envelope),
                            envelope.sentAt.timeIntervalSince1970])
        }
    }

    public func envelopes(rolloutID: String) throws(ControllerError) -> [SentEnvelope] {
        let rows = try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM rollout_envelopes WHERE rolloutID = ? ORDER BY sentAt, payloadDigest", arguments: [rolloutID])
        }
        return try rows.map { row throws(ControllerError) in
            let roleText: String = row["role"]
            guard let role = SentEnvelope.Role(rawValue: roleText) else {
                throw ControllerError(.stateError, "a stored envelope of rollout \(rolloutID) has an unknown role '\(roleText)'")
            }
            let bytes: Data = row["envelope"]
            return SentEnvelope(rolloutID: rolloutID, role: role, envelope: Array(bytes), sentAt: Date(timeIntervalSince1970: row["sentAt"]))
        }
    }
}
