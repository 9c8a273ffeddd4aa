import BatonProtocol

/// Why `batond run` cannot start, or why a reload (SIGHUP) kept the old material. The
/// codes are stable: `batond run` prints them as `error: <code>: <message>`.
public struct AgentServiceError: CodedError, Equatable {
    public enum Code: String, Sendable {
        /// The configuration has no `tls:` section; the daemon never serves plain HTTP.
        case tlsNotConfigured = "tls_not_configured"
        /// A certificate, key or CA file is missing, unreadable or not PEM.
        case tlsUnreadable = "tls_unreadable"
        /// The files were read but do not make a usable TLS context (e.g. the key does
        /// not belong to the certificate).
        case tlsInvalid = "tls_invalid"
        /// The certificate names another host, or no agent identity.
        case tlsIdentityMismatch = "tls_identity_mismatch"
        /// The certificate is outside its validity period: expired, or not yet valid.
        case tlsExpired = "tls_expired"
        /// The private key is readable or writable by group or others, or the certificate
        /// or CA file writable by them.
        case insecurePermissions = "insecure_permissions"
        /// An address could not be bound.
        case listenFailed = "listen_failed"
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
