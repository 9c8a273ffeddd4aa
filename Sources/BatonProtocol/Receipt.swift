import Crypto
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What an agent attests about one deployment once it has ended (succeeded, failed,
/// rolled back, or rollback failed): which manifest it ran, approved by whom, what
/// came of it, and where its audit chain stood. Signed by the agent with the key of its
/// fleet certificate (``SignedReceipt``), so anyone holding the fleet CA can check it
/// offline, long after the rollout (Protocol/PROTOCOL.md §10.10).
public struct Receipt: Codable, Sendable, Equatable {
    /// The DSSE payload type of a signed receipt.
    public static let payloadType = "application/vnd.baton.receipt.v1+json"

    public var hostID: String
    public var environment: String
    public var deploymentID: String
    public var app: String
    public var release: String
    public var serial: UInt64
    public var artifactSHA256: String
    /// SHA-256 (hex) of the manifest payload bytes the agent verified: the envelope's
    /// payload, so it matches `Envelope.payloadDigest` of what was sent.
    public var manifestDigest: String
    /// The trusted keys whose signatures counted when the agent accepted it.
    public var signers: [Signer]
    /// Accepted as a return to a release the host held (under `rollbackThreshold`).
    public var isReturn: Bool
    /// What `current` named when it was accepted.
    public var previousRelease: String?
    /// The terminal phase.
    public var outcome: DeploymentPhase
    /// Why, when it did not succeed.
    public var error: ErrorInfo?
    /// The release `current` names now that it has ended.
    public var live: String?
    public var acceptedAt: Date
    public var finishedAt: Date
    public var timings: [PhaseTiming]
    public var health: HealthSummary
    /// The agent's audit chain right after it recorded this deployment's end.
    public var audit: AuditPosition
    /// Set when the agent found the deployment interrupted at start and settled it.
    public var reconciliation: String?
    public var signedAt: Date

    /// The health checks in brief: how many attempts passed and failed, and the last failure.
    public struct HealthSummary: Codable, Sendable, Equatable {
        public var attempts: Int
        public var passed: Int
        public var failed: Int
        /// `check: detail` of the last failed attempt.
        public var lastFailure: String?

        public init(attempts: Int, passed: Int, failed: Int, lastFailure: String?) {
            self.attempts = attempts
            self.passed = passed
            self.failed = failed
            self.lastFailure = lastFailure
        }

        public init(_ attempts: [HealthAttempt]) {
            let last = attempts.last { !$0.passed }
            self.init(
                attempts: attempts.count, passed: attempts.filter(\.passed).count, failed: attempts.filter { !$0.passed }.count,
                lastFailure: last.map { "\($0.check): \($0.detail)" })
        }
    }

    /// A position in the agent's hash-chained audit log (as `GET /v1/audit/head` reports it).
    public struct AuditPosition: Codable, Sendable, Equatable {
        public var lines: Int
        /// SHA-256 (hex) of the last line.
        public var head: String

        public init(lines: Int, head: String) {
            self.lines = lines
            self.head = head
        }
    }

    /// The receipt of a deployment record that reached a terminal phase.
    public init(record: DeploymentRecord, live: String?, audit: AuditPosition, signedAt: Date) {
        hostID = record.hostID
        environment = record.environment
        deploymentID = record.id
        app = record.app
        release = record.release
        serial = record.serial
        artifactSHA256 = record.artifactSHA256
        manifestDigest = record.payloadDigest
        signers = record.signers
        isReturn = record.isRollback
        previousRelease = record.previousRelease
        outcome = record.phase
        error = record.error
        self.live = live
        acceptedAt = record.createdAt
        finishedAt = record.finishedAt ?? record.updatedAt
        timings = record.timings
        health = HealthSummary(record.healthAttempts)
        self.audit = audit
        reconciliation = record.reconciliation
        self.signedAt = signedAt
    }
}

/// A ``Receipt`` signed by its agent: a DSSE envelope (payload type
/// `application/vnd.baton.receipt.v1+json`) whose signature is ECDSA P-256 with SHA-256
/// (DER, standard base64) over the pre-authentication encoding, the scheme of
/// `SignedAuditHead` applied to DSSE's PAE, plus the agent's certificate chain in PEM
/// (leaf first). The payload bytes are what was signed, so a receipt needs no JSON
/// canonicalisation, and any change to it breaks the signature.
public struct SignedReceipt: Codable, Sendable, Equatable {
    public var payloadType: String
    /// The receipt JSON, standard base64.
    public var payload: String
    public var signatures: [Signature]
    /// The agent's certificate (and any intermediates), PEM, leaf first.
    public var certificates: String

    public struct Signature: Codable, Sendable, Equatable {
        /// SHA-256 (hex) of the signing key's SubjectPublicKeyInfo DER; a hint only.
        public var keyid: String?
        public var sig: String

        public init(keyid: String?, sig: String) {
            self.keyid = keyid
            self.sig = sig
        }
    }

    public init(payloadType: String, payload: String, signatures: [Signature], certificates: String) {
        self.payloadType = payloadType
        self.payload = payload
        self.signatures = signatures
        self.certificates = certificates
    }

    /// Signs `receipt` with `key`, attaching `certificates` (the PEM chain of that key).
    public static func signing(_ receipt: Receipt, key: P256.Signing.PrivateKey, certificates: String) throws -> SignedReceipt {
        let payload = Array(try BatonJSON.encode(receipt))
        let message = Envelope.preAuthenticationEncoding(payloadType: Receipt.payloadType, payload: payload)
        let signature = try key.signature(for: message).derRepresentation
        return SignedReceipt(
            payloadType: Receipt.payloadType, payload: Base64.encode(payload),
            signatures: [Signature(keyid: keyID(of: key.publicKey), sig: Base64.encode(Array(signature)))],
            certificates: certificates)
    }

    /// The keyid a receipt's signature names: SHA-256 of the public key's DER
    /// SubjectPublicKeyInfo (`openssl pkey -pubout -outform DER | sha256sum`).
    public static func keyID(of key: P256.Signing.PublicKey) -> String { Digest.sha256Hex(key.derRepresentation) }

    /// The payload bytes, or nil when they are not base64.
    public var payloadBytes: [UInt8]? { Base64.decode(payload) }

    /// True when some signature is `key`'s over the payload type and payload.
    public func isSigned(by key: P256.Signing.PublicKey) -> Bool {
        guard let payload = payloadBytes else { return false }
        let message = Envelope.preAuthenticationEncoding(payloadType: payloadType, payload: payload)
        return signatures.contains { signature in
            guard let der = Base64.decode(signature.sig),
                let parsed = try? P256.Signing.ECDSASignature(derRepresentation: der)
            else { return false }
            return key.isValidSignature(parsed, for: message)
        }
    }

    /// The receipt the payload holds. `malformed` when the payload type is not a
    /// receipt's, the payload is not base64 or not strict JSON, or not a receipt.
    public func receipt() throws(VerificationError) -> Receipt {
        guard payloadType == Receipt.payloadType else {
            throw VerificationError(.unsupportedType, "payloadType '\(payloadType)' is not '\(Receipt.payloadType)'")
        }
        guard let bytes = payloadBytes else { throw VerificationError(.malformed, "the receipt's payload is not base64") }
        do {
            try StrictJSON.check(bytes)
        } catch {
            throw VerificationError(.malformed, "the receipt's payload is not strict JSON: \(error)")
        }
        do {
            return try BatonJSON.decode(Receipt.self, from: Data(bytes))
        } catch let error as DecodingError {
            throw VerificationError(.malformed, "the receipt's payload is not a receipt: \(error.batonSummary)")
        } catch {
            throw VerificationError(.malformed, "the receipt's payload is not a receipt: \(error)")
        }
    }
}
