import BatonProtocol

/// Why a PKI operation was refused. `code` is stable (scripts and tests match on it);
/// `message` tells the operator what happened and what to do about it.
public struct PKIError: CodedError, Equatable {
    /// The stable error codes. Never rename one; add new ones instead.
    public enum Code: String, Sendable, CaseIterable {
        /// `ca.pem` or `ca.key` already exists where a new CA was to be created.
        case caExists = "ca_exists"
        /// No fleet CA (`ca.pem` and `ca.key`) in the directory given.
        case caMissing = "ca_missing"
        /// The CA files are readable but are not a usable CA (key does not match, not a CA certificate).
        case caInvalid = "ca_invalid"
        /// The CA certificate is past its notAfter: it can no longer issue.
        case caExpired = "ca_expired"
        /// A host id, controller name or fleet name does not match the naming rule.
        case invalidName = "invalid_name"
        /// A DNS name for a subject alternative name is not a valid host name.
        case invalidDNSName = "invalid_dns_name"
        /// An IP address for a subject alternative name is neither IPv4 nor IPv6.
        case invalidIPAddress = "invalid_ip_address"
        /// A validity period out of range.
        case invalidValidity = "invalid_validity"
        /// Not PEM, or PEM of the wrong kind (a certificate where a CSR was expected...).
        case badPEM = "bad_pem"
        /// A key that is not ECDSA P-256.
        case wrongKeyType = "wrong_key_type"
        /// The CSR's self-signature does not verify: it was altered or is not from its key's owner.
        case csrSignatureInvalid = "csr_signature_invalid"
        /// The CSR asks for no `baton://` identity.
        case csrIdentityMissing = "csr_identity_missing"
        /// The CSR asks for more than one `baton://` identity.
        case csrIdentityAmbiguous = "csr_identity_ambiguous"
        /// The CSR asks for an identity of another role than the one it is signed for.
        case csrIdentityMismatch = "csr_identity_mismatch"
        /// The CSR asks for a name Baton never certifies (an e-mail address, a foreign URI,
        /// DNS or IP names on a controller).
        case csrUnsupportedName = "csr_unsupported_name"
        /// A certificate does not carry exactly one valid `baton://` identity.
        case peerIdentityInvalid = "peer_identity_invalid"
        /// A file that would be overwritten already exists.
        case fileExists = "file_exists"
        /// A file to read does not exist.
        case fileNotFound = "file_not_found"
        /// Reading or writing a file failed (permissions, disk full...).
        case ioError = "io_error"
        /// Encoding a certificate failed: a bug, not an operator error.
        case internalError = "internal_error"
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var reportedCode: String { code.rawValue }

    public var description: String { "\(code.rawValue): \(message)" }
}
