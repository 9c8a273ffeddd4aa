import BatonProtocol

/// Why `baton-loadsim` could not start: a stable code (scripts match on it) and a message.
struct LoadSimError: CodedError {
    enum Code: String, Sendable {
        /// A flag's value cannot be used (a latency range, a rate, a host count).
        case invalidOption = "invalid_option"
        /// The fleet CA could not be loaded, or a certificate could not be issued from it.
        case caUnusable = "ca_unusable"
        /// The trust policy (or a key it names) could not be read or parsed.
        case trustPolicyUnreadable = "trust_policy_unreadable"
        /// A TLS context could not be made from an issued certificate.
        case tlsInvalid = "tls_invalid"
        /// A listener could not be bound, or the address file not written.
        case listenFailed = "listen_failed"
    }

    let code: Code
    let message: String

    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    var reportedCode: String { code.rawValue }
    var description: String { "\(code.rawValue): \(message)" }
}
