import BatonController
import BatonProtocol
import BatonTestSupport
import Crypto
import Foundation
import Testing

/// Receipts and revert envelopes in both history stores (migration v8-receipts / 5).
@Suite("Receipt store (SQLite and PostgreSQL)")
struct ReceiptStoreTests {
    static func signedReceipt(host: String, id: String, outcome: DeploymentPhase, key: P256.Signing.PrivateKey) throws -> SignedReceipt {
        var record = DeploymentRecord(
            id: id, hostID: host, app: "web", release: "v2", serial: 7, environment: "staging",
            payloadDigest: String(repeating: "a", count: 64), artifactSHA256: String(repeating: "b", count: 64),
            signers: [Signer(keyid: String(repeating: "c", count: 64), names: ["ci"])], isRollback: false,
            previousRelease: "v1", phase: outcome, createdAt: Date(timeIntervalSince1970: 1_800_000_000))
        record.finishedAt = Date(timeIntervalSince1970: 1_800_000_010)
        let receipt = Receipt(
            record: record, live: "v1", audit: Receipt.AuditPosition(lines: 4, head: String(repeating: "d", count: 64)),
            signedAt: Date(timeIntervalSince1970: 1_800_000_011))
        return try SignedReceipt.signing(receipt, key: key, certificates: "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    }

    @Test("a receipt is kept once per host and deployment, exactly as signed; revert envelopes once per payload, in order", arguments: StoreKind.allCases)
    func receiptsAndEnvelopes(kind: StoreKind) throws {
        let location = try kind.makeLocation()
        defer { location.remove() }
        let store = try #require(try location.open() as? any ReceiptStore)
        let key = P256.Signing.PrivateKey()
        let first = try Self.signedReceipt(host: "host-1", id: "web-7", outcome: .rolledBack, key: key)
        let other = try Self.signedReceipt(host: "host-1", id: "web-7", outcome: .succeeded, key: key)
        let when = Date(timeIntervalSince1970: 1_800_000_020)
        try store.recordReceipt(CollectedReceipt(host: "host-1", deploymentID: "web-7", receipt: first, receivedAt: when))
        // Collected again (by `baton status`), even with other content: the first stays.
        try store.recordReceipt(CollectedReceipt(host: "host-1", deploymentID: "web-7", receipt: other, receivedAt: when.addingTimeInterval(5)))
        let kept = try #require(try store.receipt(host: "host-1", deploymentID: "web-7"))
        #expect(kept.receipt == first && kept.receivedAt == when)
        #expect(kept.receipt.isSigned(by: key.publicKey))
        #expect(try kept.receipt.receipt().outcome == .rolledBack)
        #expect(try store.receipt(host: "host-2", deploymentID: "web-7") == nil)
        #expect(try store.receipt(host: "host-1", deploymentID: "web-8") == nil)

        // Reopened, as another controller would: the same.
        let reopened = try #require(try location.open() as? any ReceiptStore)
        #expect(try reopened.receipt(host: "host-1", deploymentID: "web-7")?.receipt == first)

        let signing = SigningKey()
        func envelope(_ serial: UInt64) throws -> [UInt8] {
            let now = Date(timeIntervalSince1970: 1_800_000_000)
            let manifest = Manifest(
                app: "web", release: "v1", serial: serial, environment: "staging", issuedAt: now, expiresAt: now.addingTimeInterval(3600),
                artifact: ArtifactReference(sha256: String(repeating: "b", count: 64), size: 10, format: .tarGz))
            return try Envelope.signing(manifest, with: signing)
        }
        let a = try envelope(8), b = try envelope(9)
        try store.recordEnvelope(SentEnvelope(rolloutID: "r-1", role: .revert, envelope: b, sentAt: when.addingTimeInterval(1)))
        try store.recordEnvelope(SentEnvelope(rolloutID: "r-1", role: .revert, envelope: a, sentAt: when))
        try store.recordEnvelope(SentEnvelope(rolloutID: "r-1", role: .revert, envelope: a, sentAt: when.addingTimeInterval(9)))
        let envelopes = try reopened.envelopes(rolloutID: "r-1")
        #expect(envelopes.map(\.envelope) == [a, b])
        #expect(envelopes.map(\.payloadDigest) == [try Envelope.parse(a).payloadDigest, try Envelope.parse(b).payloadDigest])
        #expect(envelopes.allSatisfy { $0.role == .revert && $0.rolloutID == "r-1" })
        #expect(try store.envelopes(rolloutID: "r-2").isEmpty)

        let migrations = try location.open().migrations().map(\.name)
        #expect(migrations.last == (kind == .sqlite ? "v8-receipts" : "receipts"), "\(migrations)")
    }
}
