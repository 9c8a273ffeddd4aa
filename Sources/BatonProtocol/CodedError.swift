/// The one shape of every error a Baton module reports: a stable code, which scripts,
/// tests, the API, the audit log and `error: <code>: <message>` lines match on, and a
/// message that tells a person what happened and what to do about it.
///
/// Each module keeps its codes in its own enum (`AgentError.Code`, `PKIError.Code`...),
/// so a typo cannot invent a code; this protocol is what the places that report errors
/// of any module (the agent's HTTP mapping, the command-line edge) rely on.
public protocol CodedError: Error, Sendable, CustomStringConvertible {
    /// The code as it is reported outward: the raw value of the module's code, or a more
    /// specific one where the error carries one (`AgentError.detailCode`).
    var reportedCode: String { get }
    /// For a person. One line, ideally; `operatorMessage` may add where (a file, a line).
    var message: String { get }
    /// The message as an operator reads it on a terminal: `message` unless the error
    /// knows more about where the problem is.
    var operatorMessage: String { get }
}

extension CodedError {
    public var operatorMessage: String { message }

    /// The `{code, message}` pair the wire types carry.
    public var errorInfo: ErrorInfo { ErrorInfo(code: reportedCode, message: message) }
}

extension VerificationError: CodedError {
    public var reportedCode: String { code.rawValue }
}

extension ConfigurationError: CodedError {
    public var reportedCode: String { code.rawValue }

    /// The one-line form operators see, with file and line.
    public var operatorMessage: String {
        switch (file, line) {
        case let (file?, line?): "\(file):\(line): \(message)"
        case let (file?, nil): "\(file): \(message)"
        default: message
        }
    }
}

/// A `{code, message}` pair read off the wire (an agent's answer, a deployment record)
/// is itself an error of that code.
extension ErrorInfo: CodedError {
    public var reportedCode: String { code }
}
