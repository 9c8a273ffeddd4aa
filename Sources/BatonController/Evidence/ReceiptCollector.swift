import BatonProtocol
import Foundation

/// Keeps what a rollout's evidence needs as it happens: the receipt each agent signed when
/// its deployment (or revert) ended, which arrives with the final deployment record, and
/// every revert envelope the controller signed. A store that fails here costs the
/// evidence, never the rollout: `baton status` collects receipts that were missed.
public struct ReceiptCollector: Sendable {
    public let store: any ReceiptStore
    public let rolloutID: String
    let clock: @Sendable () -> Date

    public init(store: any ReceiptStore, rolloutID: String, clock: @escaping @Sendable () -> Date = { Date() }) {
        self.store = store
        self.rolloutID = rolloutID
        self.clock = clock
    }

    /// For a rollout session over any history store: every store Baton ships keeps receipts.
    public static func over(_ history: any HistoryStore, rolloutID: String) -> ReceiptCollector? {
        (history as? any ReceiptStore).map { ReceiptCollector(store: $0, rolloutID: rolloutID) }
    }

    /// A revert envelope, before it is sent.
    public func sent(revert envelope: [UInt8]) {
        try? store.recordEnvelope(SentEnvelope(rolloutID: rolloutID, role: .revert, envelope: envelope, sentAt: clock()))
    }

    /// The final record of a deployment on `host`: its receipt, if the agent signed one.
    public func ended(host: String, record: DeploymentRecord) {
        Self.keep(record, host: host, in: store, now: clock())
    }

    /// Keeps the receipt a record carries, if any.
    static func keep(_ record: DeploymentRecord, host: String, in store: any ReceiptStore, now: Date) {
        guard let receipt = record.receipt else { return }
        try? store.recordReceipt(CollectedReceipt(host: host, deploymentID: record.id, receipt: receipt, receivedAt: now))
    }
}
