import BatonProtocol

/// Why a call to one agent did not give an answer we can use. The rollout turns it into
/// the host's result: `unreachable` hosts count as failed for the failure threshold.
public struct AgentCallError: CodedError, Equatable {
    public enum Kind: String, Sendable, Codable {
        /// No connection after the bounded retries (refused, timed out, dropped).
        case unreachable
        /// The TLS handshake failed: the agent's certificate is not from the fleet CA or does
        /// not name the host, or the agent refused our certificate. Never retried.
        case tls
        /// The agent answered 4xx with a stable code (a verification refusal, 409 busy, ...).
        /// Never retried: the same request gets the same answer.
        case refused
        /// The agent answered 5xx after the retries.
        case agentError
        /// The answer was not what the protocol says (not JSON, wrong shape).
        case badResponse
    }

    /// The controller's own codes for what went wrong on the way to an agent (the agent's
    /// answers carry the agent's codes).
    public enum Code: String, Sendable, CaseIterable {
        case unreachable = "agent_unreachable"
        case tlsFailed = "agent_tls_failed"
        /// The agent presented a valid fleet certificate of another host.
        case identityMismatch = "agent_identity_mismatch"
        case badResponse = "agent_bad_response"
        /// The call was cancelled (the rollout stopped, a deadline passed).
        case cancelled
        /// The agent is too old to serve what a return needs.
        case tooOld = "agent_too_old"
        /// A revert could not be signed (no controller signing key).
        case revertUnsigned = "revert_unsigned"
    }

    public var kind: Kind
    /// The HTTP status, when the agent answered.
    public var status: Int?
    /// The agent's own error document where there was one, else the controller's code
    /// (`agent_unreachable`, `agent_tls_failed`, `agent_bad_response`).
    public var info: ErrorInfo

    public init(_ kind: Kind, status: Int? = nil, code: String, message: String) {
        self.kind = kind
        self.status = status
        self.info = ErrorInfo(code: code, message: message)
    }

    public var reportedCode: String { info.code }
    public var message: String { info.message }

    public init(_ kind: Kind, status: Int? = nil, _ code: Code, message: String) {
        self.init(kind, status: status, code: code.rawValue, message: message)
    }

    /// Whether this is the controller's `code` (rather than an agent's answer).
    public func `is`(_ code: Code) -> Bool { info.code == code.rawValue }

    public var description: String { info.description }
}
