import BatonProtocol
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Hummingbird
import Logging
import NIOCore

/// The one place where errors become HTTP answers. Handlers just throw; this middleware,
/// outermost on the router, turns whatever they threw into an `ErrorDocument`
/// (`{"error": {"code", "message"}}`) with its status, counts the refusal, and logs it.
struct APIErrorMiddleware: RouterMiddleware {
    typealias Context = AgentRequestContext

    let metrics: AgentMetrics?

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let refusal = APIRefusal(error)
            metrics?.refused(code: refusal.info.code)
            var metadata: Logger.Metadata = [
                "baton.code": "\(refusal.info.code)", "baton.status": "\(refusal.status.code)",
                "baton.method": "\(request.method)", "baton.path": "\(request.uri.path)",
            ]
            if refusal.status.code >= 500 {
                metadata["error"] = "\(error)"
                context.logger.error("request failed", metadata: metadata)
            } else {
                metadata["baton.message"] = "\(refusal.info.message)"
                context.logger.notice("request refused", metadata: metadata)
            }
            return refusal.response(to: request)
        }
    }
}

/// The codes of the HTTP layer itself: refusals about the request, not about a
/// deployment, that no module error carries.
enum APICode: String, Sendable, CaseIterable {
    /// The client certificate names no controller (PROTOCOL.md, section 8.2).
    case forbiddenIdentity = "forbidden_identity"
    /// An artifact upload without `Content-Length`.
    case lengthRequired = "length_required"
    /// An artifact upload whose body ended before its `Content-Length`.
    case uploadIncomplete = "upload_incomplete"
    /// Bytes written to an upload that already ended.
    case uploadClosed = "upload_closed"
    /// A known path with a method it does not take.
    case methodNotAllowed = "method_not_allowed"
    /// The agent stopped while answering.
    case shuttingDown = "shutting_down"
    /// Anything the agent did not expect: its log has the details.
    case internalError = "internal_error"
}

/// The one table from codes to HTTP statuses: every refusal the API answers gets its
/// status here, from its code alone (PROTOCOL.md, sections 8.1 and 8.2).
enum APIStatus {
    static func of(code: String) -> Int {
        if let code = VerificationCode(rawValue: code) { return code.httpStatus }
        if let code = AgentError.Code(rawValue: code) { return of(code) }
        if let code = APICode(rawValue: code) { return of(code) }
        // A specific code below an agent code (an extraction rule, say) reaches a request
        // only inside a failed step: the agent's fault as far as the client can tell.
        return 500
    }

    static func of(_ code: AgentError.Code) -> Int {
        switch code {
        case .notFound: 404
        // Not 5xx: a controller retries those, and this one only ends when a person acts.
        case .deploymentInProgress, .releaseConflict, .stateCorrupt: 409
        case .uploadTooSlow: 408
        case .artifactTooLarge: 413
        case .digestMismatch, .sizeMismatch: 422
        case .agentBusy: 503
        case .diskFull, .cacheFull: 507
        case .artifactUnavailable, .artifactFetchFailed, .artifactFetchDeadline, .extractionFailed, .prepareFailed, .activateFailed, .healthCheckFailed, .bakeFailed,
            .interrupted, .rollbackFailed, .ioError, .auditBroken:
            500
        }
    }

    static func of(_ code: APICode) -> Int {
        switch code {
        case .forbiddenIdentity: 403
        case .lengthRequired: 411
        case .uploadIncomplete, .uploadClosed: 400
        case .methodNotAllowed: 405
        case .shuttingDown: 503
        case .internalError: 500
        }
    }
}

/// An error as the API reports it: a status and an `ErrorInfo` with a stable code.
struct APIRefusal {
    let status: HTTPResponse.Status
    let info: ErrorInfo

    init(code: String, message: String) {
        status = HTTPResponse.Status(code: APIStatus.of(code: code))
        info = ErrorInfo(code: code, message: message)
    }

    init(_ error: any Error) {
        switch error {
        case let error as AgentError:
            // By its own code: a more specific reported code must not change the status.
            self.init(status: HTTPResponse.Status(code: APIStatus.of(error.code)), info: error.info)
        case let error as any CodedError:
            self.init(code: error.reportedCode, message: error.message)
        case is NIOTooManyBytesError:
            self.init(
                code: VerificationCode.tooLarge.rawValue,
                message: "the request body is over the \(Envelope.maxEnvelopeBytes)-byte cap")
        case let error as DecodingError:
            self.init(code: VerificationCode.malformed.rawValue, message: error.batonSummary)
        case let error as HTTPError:
            self.init(error)
        case is CancellationError:
            self.init(code: APICode.shuttingDown.rawValue, message: "the agent is shutting down; retry when it is back")
        default:
            self.init(code: APICode.internalError.rawValue, message: "the agent failed to answer; its log has the details")
        }
    }

    /// Hummingbird's own refusals (no route, a body over the cap, a bad request line):
    /// their status becomes the code of the same meaning.
    private init(_ error: HTTPError) {
        let code: String? =
            switch error.status.code {
            case 400: VerificationCode.malformed.rawValue
            case 404: AgentError.Code.notFound.rawValue
            case 405: APICode.methodNotAllowed.rawValue
            case 413: VerificationCode.tooLarge.rawValue
            default: nil
            }
        let message =
            error.body
            ?? (error.status.code == 404
                ? "no such resource; the API (/v1/deployments, /v1/apps, /v1/artifacts, /v1/health) is described in Protocol/PROTOCOL.md, section 10"
                : error.status.reasonPhrase)
        if let code {
            self.init(code: code, message: message)
        } else {
            // A status Hummingbird chose that no code names: kept as it is.
            self.init(status: error.status, info: ErrorInfo(code: "http_\(error.status.code)", message: message))
        }
    }

    private init(status: HTTPResponse.Status, info: ErrorInfo) {
        self.status = status
        self.info = info
    }

    func response(to request: Request) -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        // A refused upload may still be sending its body: ask the client to stop and close,
        // rather than read gigabytes only to throw them away.
        if request.method == .put || (request.headers[.contentLength].flatMap(Int.init) ?? 0) > Envelope.maxEnvelopeBytes {
            headers[.connection] = "close"
        }
        if request.method == .head {
            return Response(status: status, headers: headers, body: ResponseBody())
        }
        let document = ErrorDocument(code: info.code, message: info.message)
        var bytes = (try? BatonJSON.encode(document)) ?? Data(#"{"error":{"code":"internal_error","message":""}}"#.utf8)
        bytes.append(0x0A)
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
