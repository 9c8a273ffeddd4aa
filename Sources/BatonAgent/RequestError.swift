import BatonProtocol

/// A request the agent refuses: a stable code and a message. The HTTP status is not
/// chosen where the refusal is thrown: it follows from the code, in one place
/// (`APIStatus`), so the same code always gets the same status.
public struct RequestError: CodedError, Equatable {
    public let info: ErrorInfo

    public init(code: String, message: String) {
        info = ErrorInfo(code: code, message: message)
    }

    public init(_ code: AgentError.Code, _ message: String) {
        self.init(code: code.rawValue, message: message)
    }

    init(_ code: APICode, _ message: String) {
        self.init(code: code.rawValue, message: message)
    }

    /// The status the API answers this refusal with.
    public var status: Int { APIStatus.of(code: info.code) }

    public var reportedCode: String { info.code }
    public var message: String { info.message }
    public var description: String { info.description }
}
