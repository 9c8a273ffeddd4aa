import BatonProtocol
import Foundation
import PostgresNIO

/// Receipts and revert envelopes in the shared store (migration 5).
extension PostgresHistoryStore: ReceiptStore {
    static let receiptsMigration = [
        """
        CREATE TABLE receipts (
            host text NOT NULL, deployment_id text NOT NULL, receipt text NOT NULL, received_at double precision NOT NULL,
            PRIMARY KEY (host, deployment_id))
        """,
        """
        CREATE TABLE rollout_envelopes (
            rollout_id text NOT NULL, payload_digest text NOT NULL, role text NOT NULL, envelope bytea NOT NULL,
            sent_at double precision NOT NULL, PRIMARY KEY (rollout_id, payload_digest))
        """,
    ]

    public func recordReceipt(_ receipt: CollectedReceipt) throws(ControllerError) {
        try guarded {
            try sql.run("""
                INSERT INTO receipts (host, deployment_id, receipt, received_at)
                VALUES (\(receipt.host), \(receipt.deploymentID), \(receipt.storedText), \(receipt.receivedAt.timeIntervalSince1970))
                ON CONFLICT (host, deployment_id) DO NOTHING
                """)
        }
    }

    public func receipt(host: String, deploymentID: String) throws(ControllerError) -> CollectedReceipt? {
        let row = try guarded {
            try sql.run("SELECT receipt, received_at FROM receipts WHERE host = \(host) AND deployment_id = \(deploymentID)")
                .rows.first.map { try $0.decode((String, Double).self) }
        }
        guard let (text, receivedAt) = row else { return nil }
        return try CollectedReceipt.fromStored(host: host, deploymentID: deploymentID, text: text, receivedAt: receivedAt)
    }

    public func recordEnvelope(_ envelope: SentEnvelope) throws(ControllerError) {
        try guarded {
            try sql.run("""
                INSERT INTO rollout_envelopes (rollout_id, payload_digest, role, envelope, sent_at)
                VALUES (\(envelope.rolloutID), \(envelope.payloadDigest), \(envelope.role.rawValue), \(Data(envelope.envelope)),
                        \(envelope.sentAt.timeIntervalSince1970))
                ON CONFLICT (rollout_id, payload_digest) DO NOTHING
                """)
        }
    }

    public func envelopes(rolloutID: String) throws(ControllerError) -> [SentEnvelope] {
        let rows = try guarded {
            try sql.run("""
                SELECT role, envelope, sent_at FROM rollout_envelopes WHERE rollout_id = \(rolloutID) ORDER BY sent_at, payload_digest
                """).rows.map { try $0.decode((String, Data, Double).self) }
        }
        return try rows.map { row throws(ControllerError) in
            let (roleText, bytes, sentAt) = row
            guard let role = SentEnvelope.Role(rawValue: roleText) else {
                throw ControllerError(.stateError, "a stored envelope of rollout \(rolloutID) has an unknown role '\(roleText)'")
            }
            return SentEnvelope(rolloutID: rolloutID, role: role, envelope: Array(bytes), sentAt: Date(timeIntervalSince1970: sentAt))
        }
    }
}
