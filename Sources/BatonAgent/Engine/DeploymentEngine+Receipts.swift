import BatonProtocol
import Crypto
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Receipts: when a deployment ends, the agent signs what it ran and what came of it with
/// the key of its fleet certificate and keeps it at `state/receipts/<id>.json`, written
/// durably like every record. `GET /v1/deployments/{id}` and `.../receipt` serve it.
///
/// The key and certificate are read from the files `batond.yaml` names at the moment of
/// signing, not from the TLS context in memory: the engine needs nothing from the
/// transport, `batond apply` signs as `batond run` does, and a renewed certificate is
/// used from the next receipt on. An agent without a P-256 key (or without `tls:`) keeps
/// no receipts and says so in its log; the deployment itself is unaffected.
extension DeploymentEngine {
    /// Where a deployment's signed receipt is kept.
    nonisolated func receiptPath(_ id: String) -> String { "\(layout.stateDirectory)/receipts/\(id).json" }

    /// Signs and stores the receipt of a deployment that reached its terminal phase. Called
    /// once at the end of every deployment, after its end is in the audit log, so the
    /// receipt's audit position covers it.
    func storeReceipt(_ id: String) async {
        guard let record = try? store.loadRecord(id), record.phase.isTerminal else { return }
        do {
            _ = try await Blocking.files { () throws(AgentError) in try self.signAndStoreReceipt(record) }
        } catch {
            logger.warning(
                "no receipt for this deployment", metadata: ["baton.deployment.id": "\(id)", "error": "\(error)"])
        }
    }

    /// The signed receipt of deployment `id`: the one stored at its end or, for a
    /// deployment that ended without one (the agent died right after its end, or an
    /// older agent ran it), one signed now. Nil while it runs, or when this agent cannot
    /// sign.
    public func receipt(_ id: String) async -> SignedReceipt? {
        guard DeploymentID.isValid(id) else { return nil }
        if let data = FileManager.default.contents(atPath: receiptPath(id)),
            let stored = try? BatonJSON.decode(SignedReceipt.self, from: data)
        {
            return stored
        }
        // A deployment still running is never signed for, whatever its record says yet.
        guard live[id] == nil, let record = try? store.loadRecord(id), record.phase.isTerminal else { return nil }
        return try? await Blocking.files { () throws(AgentError) in try self.signAndStoreReceipt(record) }
    }

    /// Builds, signs and writes the receipt of `record` (on the blocking pool).
    nonisolated func signAndStoreReceipt(_ record: DeploymentRecord) throws(AgentError) -> SignedReceipt {
        guard let files = configuration.tls else {
            throw AgentError(.ioError, "the configuration has no tls: section, so there is no key to sign receipts with")
        }
        guard let keyData = FileManager.default.contents(atPath: files.privateKey),
            let certificates = FileManager.default.contents(atPath: files.certificate)
        else {
            throw AgentError.io("read \(files.privateKey) and \(files.certificate)")
        }
        let key: P256.Signing.PrivateKey
        do {
            key = try P256.Signing.PrivateKey(pemRepresentation: String(decoding: keyData, as: UTF8.self))
        } catch {
            throw AgentError(.ioError, "\(files.privateKey) is not an ECDSA P-256 key, so it cannot sign receipts")
        }
        let head = audit.head
        // Whole seconds, as the signed audit head carries its time.
        let time = Date(timeIntervalSince1970: now().timeIntervalSince1970.rounded(.down))
        let receipt = Receipt(
            record: record, live: currentRelease(record.app), audit: Receipt.AuditPosition(lines: head.lines, head: head.hash),
            signedAt: time)
        let signed: SignedReceipt
        do {
            signed = try SignedReceipt.signing(receipt, key: key, certificates: String(decoding: certificates, as: UTF8.self))
        } catch {
            throw AgentError(.ioError, "signing the receipt failed: \(error)")
        }
        let path = receiptPath(record.id)
        try DurableFiles.makeDirectory(PathName.directory(of: path))
        let data: Data
        do {
            data = try BatonJSON.encode(signed, pretty: true)
        } catch {
            throw AgentError(.ioError, "encoding the receipt failed: \(error)")
        }
        try DurableFiles.write(data, to: path)
        return signed
    }
}
