import BatonProtocol
import Foundation

/// `baton evidence ROLLOUT_ID`: everything needed to show, offline and to someone who
/// trusts neither the controller nor its history, what a rollout deployed, who approved
/// it, and what every host says happened. One JSON document
/// (Protocol/evidence.schema.json, Protocol/PROTOCOL.md §14).
///
/// What proves something is signed by someone other than the controller that exported
/// it: the envelopes by the approvers' keys (checked against the trust policy), the
/// receipts by each agent's fleet certificate (checked against the fleet CA). The rest
/// (`rollout`, `hosts`, `approvals`) is the controller's account, there for people to
/// read and checked against the signed parts where they overlap.
public struct EvidenceBundle: Codable, Sendable, Equatable {
    public static let currentFormat = "baton-evidence-v1"

    public var format: String
    public var exportedAt: Date
    /// `user@host` of whoever exported it.
    public var exportedBy: String
    public var rollout: Rollout
    /// The rollout's own envelope first, then the reverts it signed.
    public var envelopes: [EnvelopeEntry]
    public var hosts: [Host]
    public var receipts: [ReceiptEntry]

    /// The rollout as the controller's history recorded it.
    public struct Rollout: Codable, Sendable, Equatable {
        public var id: String
        public var app: String
        public var release: String
        public var serial: UInt64
        public var environment: String
        public var strategy: String
        /// Who ran it (`user@host`).
        public var actor: String
        public var startedAt: Date
        public var finishedAt: Date?
        public var outcome: String?
        public var exitStatus: Int32?
        public var halted: Bool
        public var haltReason: String?
        public var revertSerial: UInt64?
        public var breakGlass: Bool
        public var owner: String?
        public var notes: String?
        public var source: String?
        public var artifact: ArtifactReference
    }

    /// A signed envelope the rollout sent, as the exact DSSE document, and the approvals
    /// the exporting controller counted against its trust policy.
    public struct EnvelopeEntry: Codable, Sendable, Equatable {
        public var role: SentEnvelope.Role
        public var payloadDigest: String
        public var envelope: EnvelopeDocument
        public var approvals: Approvals?
    }

    /// A DSSE envelope as JSON (`payload` standard base64).
    public struct EnvelopeDocument: Codable, Sendable, Equatable {
        public var payload: String
        public var payloadType: String
        public var signatures: [SignedReceipt.Signature]

        public init(_ envelope: Envelope) {
            payload = Base64.encode(envelope.payload)
            payloadType = envelope.payloadType
            signatures = envelope.signatures.map { SignedReceipt.Signature(keyid: $0.keyid, sig: Base64.encode($0.sig)) }
        }

        /// The envelope, read as agents read one (`Envelope.parse`).
        public func parsed() throws(VerificationError) -> Envelope {
            let data: Data
            do {
                data = try BatonJSON.encode(self)
            } catch {
                throw VerificationError(.malformed, "the envelope cannot be encoded: \(error)")
            }
            return try Envelope.parse(data)
        }
    }

    /// Who approved an envelope, as counted when the bundle was exported.
    public struct Approvals: Codable, Sendable, Equatable {
        public var signers: [Signer]
        /// Distinct signatures the environment requires (`rollbackThreshold` for a return).
        public var required: Int
        public var isReturn: Bool
        /// SHA-256 of the trust policy file in force at export.
        public var trustPolicySHA256: String?
        /// Nil when the envelope passed; else the code it failed with.
        public var problem: ErrorInfo?
    }

    /// One host of the rollout, as the controller recorded it.
    public struct Host: Codable, Sendable, Equatable {
        public var host: String
        public var phase: String
        public var wave: String?
        public var previousRelease: String?
        public var deploymentID: String?
        public var error: ErrorInfo?
        /// Set when the controller sent this host back to its previous release.
        public var revert: Revert?
    }

    public struct Revert: Codable, Sendable, Equatable {
        public var deploymentID: String?
        /// The release it went back to.
        public var to: String?
        /// Why the rollout reverted (its halt reason).
        public var reason: String?
    }

    /// An agent's signed receipt, as collected.
    public struct ReceiptEntry: Codable, Sendable, Equatable {
        public var host: String
        public var role: SentEnvelope.Role
        public var deploymentID: String
        public var receipt: SignedReceipt
    }

    /// Reads a bundle: strict JSON (no duplicate members) of the current format.
    public static func parse(_ bytes: [UInt8]) throws(EvidenceProblem) -> EvidenceBundle {
        do {
            try StrictJSON.check(bytes)
        } catch {
            throw EvidenceProblem(.malformed, subject: "bundle", "not strict JSON: \(error)")
        }
        let bundle: EvidenceBundle
        do {
            bundle = try BatonJSON.decode(EvidenceBundle.self, from: Data(bytes))
        } catch let error as DecodingError {
            throw EvidenceProblem(.malformed, subject: "bundle", "not an evidence bundle: \(error.batonSummary)")
        } catch {
            throw EvidenceProblem(.malformed, subject: "bundle", "not an evidence bundle: \(error)")
        }
        guard bundle.format == currentFormat else {
            throw EvidenceProblem(.malformed, subject: "bundle", "format '\(bundle.format)' is not '\(currentFormat)'")
        }
        return bundle
    }

    /// The bundle as pretty JSON with sorted keys, ending in a newline.
    public func serialized() -> Data {
        var data = (try? BatonJSON.encode(self, pretty: true)) ?? Data()
        data.append(0x0A)
        return data
    }
}

/// One thing wrong with a bundle, with a stable code (Protocol/PROTOCOL.md §14.3).
public struct EvidenceProblem: CodedError, Equatable, Codable {
    public enum Code: String, Sendable, Codable, CaseIterable {
        /// The bundle is not JSON of the evidence format.
        case malformed = "evidence_malformed"
        /// An envelope fails the trust policy: `detail` is the verifier's code
        /// (`signature_invalid`, `threshold_not_met`, `untrusted_key`...).
        case envelopeRefused = "envelope_refused"
        /// The rollout's manifest is not what the bundle says was rolled out.
        case manifestMismatch = "manifest_mismatch"
        /// A receipt's payload cannot be read.
        case receiptMalformed = "receipt_malformed"
        /// A receipt's certificate does not chain to the fleet CA, or was not valid when it signed.
        case receiptCertificateUntrusted = "receipt_certificate_untrusted"
        /// A receipt's signature is not by the key of the certificate it carries.
        case receiptSignatureInvalid = "receipt_signature_invalid"
        /// A receipt's certificate names another host than the receipt, or than the
        /// host it is filed under.
        case receiptHostMismatch = "receipt_host_mismatch"
        /// A receipt is for another manifest, app, release, artifact or deployment.
        case receiptManifestMismatch = "receipt_manifest_mismatch"
        /// A receipt names a signer (a key the verifier's trust policy knows) whose
        /// signature the envelope in the bundle does not carry: the envelope is not the
        /// one the agent accepted.
        case receiptSignersMismatch = "receipt_signers_mismatch"
        /// A host the rollout deployed to (or reverted) has no receipt.
        case receiptMissing = "receipt_missing"
    }

    public var code: Code
    /// What it is about: `envelope rollout`, `receipt host-1 web-7`...
    public var subject: String
    public var message: String
    /// The underlying code, where one decided (an envelope's verification code).
    public var detail: String?

    public init(_ code: Code, subject: String, _ message: String, detail: String? = nil) {
        self.code = code
        self.subject = subject
        self.message = message
        self.detail = detail
    }

    public var reportedCode: String { code.rawValue }
    public var description: String { "\(code.rawValue): \(subject): \(message)" }
}
