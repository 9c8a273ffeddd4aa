import BatonProtocol
import Foundation

/// Where the controller keeps agents' signed receipts and the revert envelopes its
/// rollouts signed: what `baton evidence` exports. Both history stores keep them
/// (`SQLiteHistoryStore+Receipts`, `PostgresHistoryStore+Receipts`); it is a protocol of
/// its own so the history seam stays as it was for everything else.
public protocol ReceiptStore: Sendable {
    /// Keeps a receipt. One per host and deployment: the first one kept stays (a receipt
    /// is evidence and is never replaced; collecting it again changes nothing).
    func recordReceipt(_ receipt: CollectedReceipt) throws(ControllerError)
    func receipt(host: String, deploymentID: String) throws(ControllerError) -> CollectedReceipt?
    /// Keeps an envelope a rollout sent besides its own (the reverts it signed), once per
    /// payload.
    func recordEnvelope(_ envelope: SentEnvelope) throws(ControllerError)
    /// The envelopes kept for a rollout, in the order they were sent.
    func envelopes(rolloutID: String) throws(ControllerError) -> [SentEnvelope]
}

/// An agent's signed receipt as the controller collected it.
public struct CollectedReceipt: Codable, Sendable, Equatable {
    public var host: String
    public var deploymentID: String
    public var receipt: SignedReceipt
    public var receivedAt: Date

    public init(host: String, deploymentID: String, receipt: SignedReceipt, receivedAt: Date) {
        self.host = host
        self.deploymentID = deploymentID
        self.receipt = receipt
        self.receivedAt = receivedAt
    }

    /// The receipt as JSON for a store's text column.
    var storedText: String { String(decoding: (try? BatonJSON.encode(receipt)) ?? Data(), as: UTF8.self) }

    static func fromStored(host: String, deploymentID: String, text: String, receivedAt: Double) throws(ControllerError) -> CollectedReceipt {
        guard let receipt = try? BatonJSON.decode(SignedReceipt.self, from: Data(text.utf8)) else {
            throw ControllerError(.stateError, "the stored receipt of \(deploymentID) on \(host) cannot be read")
        }
        return CollectedReceipt(host: host, deploymentID: deploymentID, receipt: receipt, receivedAt: Date(timeIntervalSince1970: receivedAt))
    }
}

/// An envelope a rollout sent, kept as the exact bytes.
public struct SentEnvelope: Codable, Sendable, Equatable {
    /// Why it was sent.
    public enum Role: String, Codable, Sendable {
        /// The rollout's own envelope (kept with the rollout's resume information).
        case rollout
        /// A return signed by the controller when the rollout halted or was aborted.
        case revert
    }

    public var rolloutID: String
    public var role: Role
    public var payloadDigest: String
    public var envelope: [UInt8]
    public var sentAt: Date

    public init(rolloutID: String, role: Role, envelope: [UInt8], sentAt: Date) {
        self.rolloutID = rolloutID
        self.role = role
        self.envelope = envelope
        self.sentAt = sentAt
        payloadDigest = (try? Envelope.parse(envelope).payloadDigest) ?? Digest.sha256Hex(envelope)
    }
}
