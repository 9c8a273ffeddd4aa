import BatonPKI
import BatonProtocol
import BatonTestSupport
import Crypto
import Foundation
import Testing

@testable import BatonController

/// `EvidenceVerifier` on bundles made here, with a real fleet CA and agent certificate
/// (BatonPKI): the checks that need a clock or a misfiled receipt, which the end-to-end
/// test on live agents cannot stage.
@Suite("Evidence verification")
struct EvidenceVerifierTests {
    struct Material {
        let ca: FleetCA
        let agent: IssuedCredential
        let key: P256.Signing.PrivateKey
        let policy: TrustPolicy
        let envelope: Envelope
        let manifest: Manifest
    }

    /// A CA, an agent certificate for host-1 valid for one day from `issued`, and a
    /// manifest signed by `ci` under a 1-of-1 policy.
    static func material(_ dir: TemporaryDirectory, issued: Date) throws -> Material {
        let ca = try FleetCA.create(in: dir.child("ca"), now: issued.addingTimeInterval(-86_400))
        let agent = try ca.issueAgent(hostID: "host-1", validityDays: 1, now: issued)
        let key = try P256.Signing.PrivateKey(pemRepresentation: agent.key.pem)
        let ci = SigningKey()
        let policy = TrustPolicy(
            keys: ["ci": ci.verifyingKey], environments: ["staging": .init(threshold: 1, keys: ["ci"], rollbackThreshold: 1)])
        let manifest = Manifest(
            app: "web", release: "v2", serial: 7, environment: "staging", issuedAt: issued, expiresAt: issued.addingTimeInterval(3600),
            artifact: ArtifactReference(sha256: String(repeating: "b", count: 64), size: 10, format: .tarGz))
        let envelope = try Envelope.parse(try Envelope.signing(manifest, with: ci))
        return Material(ca: ca, agent: agent, key: key, policy: policy, envelope: envelope, manifest: manifest)
    }

    /// host-1's receipt of running the manifest, signed at `signedAt`, filed as `role`.
    static func bundle(_ m: Material, signedAt: Date, role: SentEnvelope.Role = .rollout) throws -> [UInt8] {
        var record = DeploymentRecord(
            id: "web-7", hostID: "host-1", app: "web", release: "v2", serial: 7, environment: "staging",
            payloadDigest: m.envelope.payloadDigest, artifactSHA256: m.manifest.artifact.sha256,
            signers: [Signer(keyid: m.policy.keys["ci"]!.keyid, names: ["ci"])], isRollback: false, previousRelease: "v1",
            phase: .succeeded, createdAt: signedAt.addingTimeInterval(-10))
        record.finishedAt = signedAt
        let receipt = try SignedReceipt.signing(
            Receipt(record: record, live: "v2", audit: .init(lines: 2, head: String(repeating: "d", count: 64)), signedAt: signedAt),
            key: m.key, certificates: m.agent.certificate.pem)
        let bundle = EvidenceBundle(
            format: EvidenceBundle.currentFormat, exportedAt: signedAt, exportedBy: "test@here",
            rollout: EvidenceBundle.Rollout(
                id: "r-1", app: "web", release: "v2", serial: 7, environment: "staging", strategy: "all at once", actor: "ci@runner",
                startedAt: signedAt.addingTimeInterval(-20), finishedAt: signedAt, outcome: "succeeded", exitStatus: 0, halted: false,
                haltReason: nil, revertSerial: nil, breakGlass: false, owner: nil, notes: nil, source: nil, artifact: m.manifest.artifact),
            envelopes: [EvidenceBundle.EnvelopeEntry(
                role: .rollout, payloadDigest: m.envelope.payloadDigest, envelope: EvidenceBundle.EnvelopeDocument(m.envelope), approvals: nil)],
            hosts: [EvidenceBundle.Host(
                host: "host-1", phase: "succeeded", wave: "all", previousRelease: "v1", deploymentID: role == .rollout ? "web-7" : nil,
                error: nil, revert: role == .revert ? EvidenceBundle.Revert(deploymentID: "web-7", to: "v1", reason: "test") : nil)],
            receipts: [EvidenceBundle.ReceiptEntry(host: "host-1", role: role, deploymentID: "web-7", receipt: receipt)])
        return Array(bundle.serialized())
    }

    static func codes(_ report: EvidenceReport) -> [String] { report.problems.map(\.code.rawValue) }

    @Test("a receipt signed while its certificate was valid verifies long after; one signed after the certificate expired does not")
    func certificateValidityAtSigning() throws {
        let dir = try TemporaryDirectory(prefix: "baton-evidence")
        defer { dir.remove() }
        let issued = Date().addingTimeInterval(-5 * 86_400)
        let m = try Self.material(dir, issued: issued)

        let inTime = EvidenceVerifier.verify(bundle: try Self.bundle(m, signedAt: issued.addingTimeInterval(600)), ca: m.ca.certificate, policy: m.policy)
        #expect(inTime.verdict == .verified, "\(inTime.problems)")
        #expect(inTime.receipts.first?.signedBy == "baton://agent/host-1")

        let late = EvidenceVerifier.verify(bundle: try Self.bundle(m, signedAt: Date()), ca: m.ca.certificate, policy: m.policy)
        #expect(Self.codes(late) == ["receipt_certificate_untrusted"])
        #expect(late.problems.first?.message.contains("was not valid when the receipt was signed") == true)

        // The CA given as PEM text, as the command reads it; a leaf is not a CA.
        let fromPEM = try EvidenceVerifier.verify(
            bundle: try Self.bundle(m, signedAt: issued.addingTimeInterval(600)), caPEM: m.ca.certificatePEM, policy: m.policy)
        #expect(fromPEM.verdict == .verified)
        #expect(throws: ControllerError.self) {
            try EvidenceVerifier.verify(bundle: [], caPEM: m.agent.certificate.pem, policy: m.policy)
        }
    }

    @Test("a genuine receipt of the rollout filed as a revert's is a mismatch; a policy without the signer refuses the envelope")
    func misfiledAndUntrusted() throws {
        let dir = try TemporaryDirectory(prefix: "baton-evidence")
        defer { dir.remove() }
        let issued = Date().addingTimeInterval(-3600)
        let m = try Self.material(dir, issued: issued)
        let misfiled = EvidenceVerifier.verify(bundle: try Self.bundle(m, signedAt: issued.addingTimeInterval(60), role: .revert), ca: m.ca.certificate, policy: m.policy)
        #expect(Self.codes(misfiled) == ["receipt_manifest_mismatch"])
        #expect(misfiled.problems.first?.message.contains("role") == true)

        var stranger = m.policy
        stranger.keys = ["other": SigningKey().verifyingKey]
        stranger.environments["staging"]?.keys = ["other"]
        let refused = EvidenceVerifier.verify(bundle: try Self.bundle(m, signedAt: issued.addingTimeInterval(60)), ca: m.ca.certificate, policy: stranger)
        #expect(refused.problems.map { "\($0.code.rawValue)/\($0.detail ?? "-")" } == ["envelope_refused/untrusted_key"])
        #expect(refused.envelopes.first?.valid == false)
    }
}
