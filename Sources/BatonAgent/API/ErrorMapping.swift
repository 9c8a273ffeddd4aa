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

/// An error as the API reports it: a status and an `ErrorInfo` with a stable code.
struct APIRefusal {
    let status: HTTPResponse.Status
    let info: ErrorInfo

    init(status: Int, code: String, message: String) {
        self.status = HTTPResponse.Status(code: status)
        info = ErrorInfo(code: code, message: message)
    }

    init(_ error: any Error) {
        switch error {
        case let error as RequestError:
            self.init(status: error.status, code: error.info.code, message: error.info.message)
        case let error as VerificationError:
            self.init(status: error.code.httpStatus, code: error.code.rawValue, message: error.message)
        case let error as AgentError:
            self.init(status: Self.status(of: error.code), code: error.reportedCode, message: error.message)
        case is NIOTooManyBytesError:
            self.init(
                status: 413, code: VerificationCode.tooLarge.rawValue,
                message: "the request body is over the \(Envelope.maxEnvelopeBytes)-byte cap")
        case let error as DecodingError:
            self.init(status: 400, code: VerificationCode.malformed.rawValue, message: error.batonSummary)
        case let error as HTTPError:
            let code =
                switch error.status.code {
                case 400: VerificationCode.malformed.rawValue
                case 404: AgentError.Code.notFound.rawValue
                case 405: "method_not_allowed"
                case 413: VerificationCode.tooLarge.rawValue
                default: "http_\(error.status.code)"
                }
            let message =
                error.body
                ?? (error.status.code == 404
                    ? "no such resource; the API (/v1/deployments, /v1/apps, /v1/artifacts, /v1/health) is described in Protocol/PROTOCOL.md, section 10"
                    : error.status.reasonPhrase)
            self.init(status: error.status.code, code: code, message: message)
        case is CancellationError:
            self.init(status: 503, code: "shutting_down", message: "the agent is shutting down; retry when it is back")
        default:
            self.init(status: 500, code: "internal_error", message: "the agent failed to answer; its log has the details")
        }
    }

    static func status(of code: AgentError.Code) -> Int {
        switch code {
        case .notFound: 404
        // Not 5xx: a controller retries those, and this one only ends when a person acts.
        case .deploymentInProgress, .releaseConflict, .stateCorrupt: 409
        case .artifactTooLarge: 413
        case .digestMismatch, .sizeMismatch: 422
        case .agentBusy: 503
        case .diskFull: 507
        default: 500
        }
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
