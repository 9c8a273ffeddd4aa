#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Why a manifest or envelope was refused. The raw values are stable: they are what
/// the agent's API returns, what `baton manifest verify` prints and what the test
/// vectors in `Protocol/vectors` name. Never rename one; add new ones instead.
public enum VerificationCode: String, Sendable, Codable, CaseIterable {
    /// Not a DSSE envelope: bad JSON, a missing field, bad base64.
    case malformed
    /// The envelope or its payload is over the size cap.
    case tooLarge = "too_large"
    /// The payloadType is not `application/vnd.baton.manifest.v1+json`.
    case unsupportedType = "unsupported_type"
    /// A signature from a trusted key does not verify.
    case signatureInvalid = "signature_invalid"
    /// No signature comes from a key the trust policy names (or no key is trusted at all).
    case untrustedKey = "untrusted_key"
    /// Valid signatures, but from fewer distinct keys than the environment requires.
    case thresholdNotMet = "threshold_not_met"
    /// The payload is not a valid manifest v1 (a field missing, out of bounds, a bad name).
    case invalidManifest = "invalid_manifest"
    /// `expiresAt` is in the past.
    case expired
    /// `issuedAt` is in the future (beyond the allowed clock skew).
    case notYetValid = "not_yet_valid"
    /// The manifest's environment is not this host's.
    case wrongEnvironment = "wrong_environment"
    /// The manifest lists `targets` and this host is not among them.
    case notTargeted = "not_targeted"
    /// The serial is lower than the last one accepted for the app (replay or rollback attack).
    case staleSerial = "stale_serial"
    /// Same serial as the last accepted manifest, different content.
    case serialConflict = "serial_conflict"
    /// The very manifest already accepted: not an error for the agent, which answers with
    /// the existing deployment.
    case duplicate
    /// A return to a release the host holds, signed by fewer keys than the full threshold,
    /// that differs from the manifest the release was approved with in something other
    /// than `serial`, `issuedAt`, `expiresAt` or `notes`. With the full threshold it would
    /// be a new approval; with fewer it would let one signer change what runs.
    case returnMismatch = "return_mismatch"
    /// The manifest is valid for longer (`expiresAt` minus `issuedAt`) than the trust
    /// policy's `maxValidity` for its environment allows.
    case validityTooLong = "validity_too_long"
    /// The trust policy's `requireTargets` is set for the environment and the manifest
    /// names no `targets`.
    case targetsRequired = "targets_required"
    /// A change freeze of the trust policy is in force for the environment, and the
    /// manifest is neither a return to a release the host holds nor signed to break
    /// glass (one approval more than the threshold, or the environment's break-glass keys).
    case changeFrozen = "change_frozen"

    /// The HTTP status the agent answers with (docs/design.md §4).
    public var httpStatus: Int {
        switch self {
        case .malformed: 400
        case .tooLarge: 413
        case .unsupportedType, .invalidManifest: 422
        case .signatureInvalid, .untrustedKey, .thresholdNotMet, .expired, .notYetValid,
            .wrongEnvironment, .notTargeted, .returnMismatch, .validityTooLong, .targetsRequired,
            .changeFrozen:
            403
        case .staleSerial, .serialConflict: 409
        case .duplicate: 200
        }
    }
}

/// A refused envelope: a stable code and a message that tells an operator what happened
/// and what to do about it.
public struct VerificationError: Error, Sendable, Equatable, CustomStringConvertible {
    public let code: VerificationCode
    public let message: String

    public init(_ code: VerificationCode, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

/// A problem with a key, a policy file or a manifest file that a person wrote.
/// `file` and `line` point at the place to fix when they are known.
public struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, Codable {
        case invalidYAML = "invalid_yaml"
        case missingField = "missing_field"
        case unknownField = "unknown_field"
        case invalidValue = "invalid_value"
        case unknownKey = "unknown_key"
        case keyUnreadable = "key_unreadable"
        case badPEM = "bad_pem"
        case wrongKeyType = "wrong_key_type"
        case noTrustedKeys = "no_trusted_keys"
        case unknownEnvironment = "unknown_environment"
        /// A configuration, policy or key file that group or others can write (or, for a
        /// private key, read).
        case insecurePermissions = "insecure_permissions"
        /// A change freeze names a time zone the system's time zone database does not
        /// have (or a file there that is not one this reader can evaluate).
        case unknownTimeZone = "unknown_time_zone"
    }

    public let code: Code
    public let message: String
    public let file: String?
    public let line: Int?

    public init(_ code: Code, _ message: String, file: String? = nil, line: Int? = nil) {
        self.code = code
        self.message = message
        self.file = file
        self.line = line
    }

    public var description: String {
        switch (file, line) {
        case let (file?, line?): "\(code.rawValue): \(file):\(line): \(message)"
        case let (file?, nil): "\(code.rawValue): \(file): \(message)"
        default: "\(code.rawValue): \(message)"
        }
    }
}
