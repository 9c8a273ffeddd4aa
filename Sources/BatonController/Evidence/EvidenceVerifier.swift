import BatonPKI
import BatonProtocol
import Crypto
import Foundation
import X509

/// What `baton evidence verify` found: the verdict, what each signed part says, and
/// every problem with a stable code. Pure: the caller read the bundle, the fleet CA and
/// the trust policy.
public struct EvidenceReport: Codable, Sendable, Equatable {
    public enum Verdict: String, Codable, Sendable {
        /// Every signature checks out and the signed parts agree with each other.
        case verified
        case failed
    }

    public var verdict: Verdict
    /// The controller's account of the rollout (not signed; read it as such).
    public var rollout: EvidenceBundle.Rollout?
    public var envelopes: [EnvelopeFinding]
    public var receipts: [ReceiptFinding]
    public var problems: [EvidenceProblem]

    /// An envelope and the approvals the trust policy given counts on it.
    public struct EnvelopeFinding: Codable, Sendable, Equatable {
        public var role: SentEnvelope.Role
        public var payloadDigest: String
        public var app: String?
        public var release: String?
        public var serial: UInt64?
        public var signers: [Signer]
        public var required: Int?
        public var isReturn: Bool
        public var valid: Bool
    }

    /// A receipt and what its agent signed in it.
    public struct ReceiptFinding: Codable, Sendable, Equatable {
        public var host: String
        public var role: SentEnvelope.Role
        public var deploymentID: String
        public var release: String?
        public var outcome: DeploymentPhase?
        public var error: ErrorInfo?
        public var live: String?
        public var auditLines: Int?
        public var signedAt: Date?
        /// The identity of the certificate that signed it.
        public var signedBy: String?
        public var valid: Bool
    }
}

/// Checks an evidence bundle offline (Protocol/PROTOCOL.md §14.2): every envelope against
/// the trust policy's keys and thresholds, every receipt's signature against its
/// agent's certificate and that certificate against the fleet CA, that each certificate
/// names the host its receipt is about, that each receipt is for a manifest of the bundle
/// (app, release, serial, artifact digest, manifest digest), and that every host the
/// rollout deployed to or reverted has its receipt.
public enum EvidenceVerifier {
    public static func verify(bundle bytes: [UInt8], ca: Certificate, policy: TrustPolicy) -> EvidenceReport {
        let bundle: EvidenceBundle
        do {
            bundle = try EvidenceBundle.parse(bytes)
        } catch {
            return EvidenceReport(verdict: .failed, rollout: nil, envelopes: [], receipts: [], problems: [error])
        }
        var problems: [EvidenceProblem] = []

        // Receipts first: whether an envelope is a return is what its agents attest.
        var receiptFindings: [EvidenceReport.ReceiptFinding] = []
        var verifiedReceipts: [(entry: EvidenceBundle.ReceiptEntry, receipt: Receipt)] = []
        for entry in bundle.receipts {
            let (finding, receipt, found) = check(entry, ca: ca)
            receiptFindings.append(finding)
            problems += found
            if let receipt, found.isEmpty { verifiedReceipts.append((entry, receipt)) }
        }
        let returns = Set(verifiedReceipts.filter { $0.receipt.isReturn }.map(\.receipt.manifestDigest))

        var envelopeFindings: [EvidenceReport.EnvelopeFinding] = []
        var manifests: [String: (role: SentEnvelope.Role, manifest: Manifest, envelope: Envelope)] = [:]
        for (index, entry) in bundle.envelopes.enumerated() {
            let subject = "envelope \(index + 1) (\(entry.role.rawValue))"
            let envelope: Envelope
            do {
                envelope = try entry.envelope.parsed()
            } catch {
                problems.append(EvidenceProblem(.envelopeRefused, subject: subject, error.message, detail: error.code.rawValue))
                envelopeFindings.append(EvidenceReport.EnvelopeFinding(
                    role: entry.role, payloadDigest: entry.payloadDigest, signers: [], isReturn: false, valid: false))
                continue
            }
            let digest = envelope.payloadDigest
            let asReturn = entry.role == .revert || returns.contains(digest)
            var finding = EvidenceReport.EnvelopeFinding(
                role: entry.role, payloadDigest: digest, signers: [], isReturn: asReturn, valid: false)
            // Receipts are matched by the digest of what was sent, approved or not: an
            // envelope short of approvals is its own problem, not its receipts'.
            if let manifest = try? Manifest.parse(payload: envelope.payload) {
                finding.app = manifest.app
                finding.release = manifest.release
                finding.serial = manifest.serial
                manifests[digest] = (entry.role, manifest, envelope)
            }
            switch Result(catching: { () throws(VerificationError) in try EnvelopeApproval.check(envelope, policy: policy, asReturn: asReturn) }) {
            case .success(let verified):
                finding.signers = verified.signers
                finding.required = verified.requiredSignatures
                finding.valid = true
                if entry.role == .rollout {
                    problems += compare(verified.manifest, with: bundle.rollout, subject: subject)
                }
            case .failure(let error):
                problems.append(EvidenceProblem(
                    .envelopeRefused, subject: subject,
                    "\(error.message) (checked against the trust policy given, as of its issue time)", detail: error.code.rawValue))
            }
            envelopeFindings.append(finding)
        }
        if !bundle.envelopes.contains(where: { $0.role == .rollout }) {
            problems.append(EvidenceProblem(.malformed, subject: "bundle", "it holds no envelope of the rollout itself"))
        }

        // Each verified receipt is for a verified manifest of the bundle, on its host.
        for (entry, receipt) in verifiedReceipts {
            let subject = "receipt \(entry.host) \(entry.deploymentID)"
            guard let (role, manifest, envelope) = manifests[receipt.manifestDigest] else {
                problems.append(EvidenceProblem(
                    .receiptManifestMismatch, subject: subject,
                    "the agent ran manifest sha256:\(receipt.manifestDigest.prefix(16))…, which is not an envelope of this bundle"))
                continue
            }
            var differences: [String] = []
            if role != entry.role { differences.append("role (\(entry.role.rawValue) receipt for the \(role.rawValue) envelope)") }
            if receipt.app != manifest.app { differences.append("app") }
            if receipt.release != manifest.release { differences.append("release") }
            if receipt.serial != manifest.serial { differences.append("serial") }
            if receipt.environment != manifest.environment { differences.append("environment") }
            if receipt.artifactSHA256 != manifest.artifact.sha256 { differences.append("artifact digest") }
            if receipt.deploymentID != entry.deploymentID { differences.append("deployment id") }
            if !differences.isEmpty {
                problems.append(EvidenceProblem(
                    .receiptManifestMismatch, subject: subject,
                    "the signed receipt differs from the manifest it names in: \(differences.joined(separator: ", "))"))
            }
            let missing = unsignedSigners(receipt.signers, envelope: envelope, policy: policy)
            if !missing.isEmpty {
                problems.append(EvidenceProblem(
                    .receiptSignersMismatch, subject: subject,
                    "the agent counted the signature of \(missing.joined(separator: ", ")), which the envelope in the bundle does not carry"))
            }
        }

        // Every deployment and revert the controller recorded has its receipt.
        let filed = Set(bundle.receipts.map { "\($0.host)/\($0.role.rawValue)/\($0.deploymentID)" })
        for host in bundle.hosts {
            for (role, id) in [(SentEnvelope.Role.rollout, host.deploymentID), (.revert, host.revert?.deploymentID)] {
                guard let id, !filed.contains("\(host.host)/\(role.rawValue)/\(id)") else { continue }
                problems.append(EvidenceProblem(
                    .receiptMissing, subject: "receipt \(host.host) \(id)",
                    "\(host.host) ran \(role == .revert ? "a revert" : "the rollout") as \(id), but the bundle holds no receipt for it"))
            }
        }

        return EvidenceReport(
            verdict: problems.isEmpty ? .verified : .failed, rollout: bundle.rollout, envelopes: envelopeFindings,
            receipts: receiptFindings, problems: problems)
    }

    /// The names of the receipt's signers that the trust policy knows and whose valid
    /// signature the envelope lacks. Keys the policy does not know cannot be checked here.
    static func unsignedSigners(_ signers: [Signer], envelope: Envelope, policy: TrustPolicy) -> [String] {
        let message = envelope.preAuthenticationEncoding
        return signers.compactMap { signer in
            guard let key = policy.keys.values.first(where: { $0.keyid == signer.keyid }) else { return nil }
            let signed = envelope.signatures.contains { key.isValidSignature($0.sig, for: message) }
            return signed ? nil : (signer.names.first ?? signer.keyid)
        }
    }

    /// The rollout's manifest against the controller's account of the rollout.
    static func compare(_ manifest: Manifest, with rollout: EvidenceBundle.Rollout, subject: String) -> [EvidenceProblem] {
        var differences: [String] = []
        if manifest.app != rollout.app { differences.append("app") }
        if manifest.release != rollout.release { differences.append("release") }
        if manifest.serial != rollout.serial { differences.append("serial") }
        if manifest.environment != rollout.environment { differences.append("environment") }
        if manifest.artifact.sha256 != rollout.artifact.sha256 { differences.append("artifact digest") }
        guard !differences.isEmpty else { return [] }
        return [EvidenceProblem(
            .manifestMismatch, subject: subject,
            "the signed manifest differs from the rollout the bundle describes in: \(differences.joined(separator: ", "))")]
    }

    /// One receipt: its certificate from the fleet CA, signed by that certificate's key,
    /// then (only then) read: the certificate valid when it signed, naming the host the
    /// receipt is about and the host it is filed under.
    static func check(
        _ entry: EvidenceBundle.ReceiptEntry, ca: Certificate
    ) -> (EvidenceReport.ReceiptFinding, Receipt?, [EvidenceProblem]) {
        let subject = "receipt \(entry.host) \(entry.deploymentID)"
        var finding = EvidenceReport.ReceiptFinding(host: entry.host, role: entry.role, deploymentID: entry.deploymentID, valid: false)
        let certificates: [Certificate]
        switch chain(entry.receipt.certificates, to: ca) {
        case .success(let chain): certificates = chain
        case .failure(let problem):
            return (finding, nil, [EvidenceProblem(.receiptCertificateUntrusted, subject: subject, problem.message)])
        }
        let leaf = certificates[0]
        let identity = try? PeerCertificate(leaf).identity
        finding.signedBy = identity?.uri
        guard let key = P256.Signing.PublicKey(leaf.publicKey), entry.receipt.isSigned(by: key) else {
            return (finding, nil, [EvidenceProblem(
                .receiptSignatureInvalid, subject: subject,
                "the receipt is not signed by the key of the certificate it carries (\(identity?.uri ?? "no Baton identity")): it was altered, or signed by another key")])
        }
        let receipt: Receipt
        do {
            receipt = try entry.receipt.receipt()
        } catch {
            return (finding, nil, [EvidenceProblem(.receiptMalformed, subject: subject, error.message, detail: error.code.rawValue)])
        }
        finding.release = receipt.release
        finding.outcome = receipt.outcome
        finding.error = receipt.error
        finding.live = receipt.live
        finding.auditLines = receipt.audit.lines
        finding.signedAt = receipt.signedAt

        var problems: [EvidenceProblem] = []
        if let expired = certificates.first(where: { !($0.notValidBefore <= receipt.signedAt && receipt.signedAt <= $0.notValidAfter) }) {
            problems.append(EvidenceProblem(
                .receiptCertificateUntrusted, subject: subject,
                "its certificate \(expired.subject) was not valid when the receipt was signed (\(RFC3339.format(receipt.signedAt)))"))
        }
        if identity != .agent(hostID: receipt.hostID) {
            problems.append(EvidenceProblem(
                .receiptHostMismatch, subject: subject,
                "the receipt is about \(receipt.hostID), but it is signed with the certificate of \(identity?.uri ?? "no Baton identity")"))
        } else if receipt.hostID != entry.host {
            problems.append(EvidenceProblem(
                .receiptHostMismatch, subject: subject, "the receipt is \(receipt.hostID)'s, filed under \(entry.host)"))
        }
        finding.valid = problems.isEmpty
        return (finding, receipt, problems)
    }

    struct ChainProblem: Error {
        var message: String
    }

    /// The certificates of `pem` (leaf first, then any intermediates), when each was
    /// issued by the next and the last by `ca`.
    static func chain(_ pem: String, to ca: Certificate) -> Result<[Certificate], ChainProblem> {
        let certificates: [Certificate]
        do {
            certificates = try pemBlocks(pem).map { try Certificate(pemEncoded: $0) }.filter { $0 != ca }
        } catch {
            return .failure(ChainProblem(message: "its certificates are not PEM X.509 certificates: \(error)"))
        }
        guard !certificates.isEmpty else { return .failure(ChainProblem(message: "it carries no certificate")) }
        for (index, certificate) in certificates.enumerated() {
            let issuer = index + 1 < certificates.count ? certificates[index + 1] : ca
            if index > 0, !isAuthority(certificate) {
                return .failure(ChainProblem(message: "an intermediate certificate (\(certificate.subject)) is not a CA"))
            }
            guard certificate.issuer == issuer.subject, issuer.publicKey.isValidSignature(certificate.signature, for: certificate) else {
                return .failure(ChainProblem(message: "its certificate \(certificate.subject) was not issued by the fleet CA given (\(ca.subject))"))
            }
        }
        return .success(certificates)
    }

    static func isAuthority(_ certificate: Certificate) -> Bool {
        guard case .isCertificateAuthority? = try? certificate.extensions.basicConstraints else { return false }
        return true
    }

    /// Each `-----BEGIN CERTIFICATE-----` ... `-----END CERTIFICATE-----` block of `text`.
    static func pemBlocks(_ text: String) -> [String] {
        let begin = "-----BEGIN CERTIFICATE-----", end = "-----END CERTIFICATE-----"
        var blocks: [String] = []
        var rest = text[...]
        while let start = rest.range(of: begin), let stop = rest.range(of: end, range: start.upperBound..<rest.endIndex) {
            blocks.append(String(rest[start.lowerBound..<stop.upperBound]))
            rest = rest[stop.upperBound...]
        }
        return blocks
    }
}

extension EvidenceVerifier {
    /// `verify` with the fleet CA as PEM text (`ca.pem`): `credentials_invalid` when it
    /// is not a CA certificate.
    public static func verify(bundle bytes: [UInt8], caPEM: String, policy: TrustPolicy) throws(ControllerError) -> EvidenceReport {
        let ca: Certificate
        do {
            ca = try Certificate(pemEncoded: caPEM)
        } catch {
            throw ControllerError(.credentialsInvalid, "the fleet CA file is not a PEM certificate: \(error)")
        }
        guard case .isCertificateAuthority? = try? ca.extensions.basicConstraints else {
            throw ControllerError(.credentialsInvalid, "the fleet CA file holds a certificate that is not a CA (basicConstraints CA:true missing)")
        }
        return verify(bundle: bytes, ca: ca, policy: policy)
    }
}
