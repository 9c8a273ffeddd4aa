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

/// Why the agent refused a request or ended a deployment. The codes are stable: the API,
/// deployment records, the audit log and `batond apply` all carry them.
public struct AgentError: CodedError, Equatable {
    public enum Code: String, Sendable, Codable, CaseIterable {
        // Requests
        case deploymentInProgress = "deployment_in_progress"
        case notFound = "not_found"
        case agentBusy = "agent_busy"
        case cacheFull = "cache_full"
        case uploadTooSlow = "upload_too_slow"
        // Artifacts
        case artifactUnavailable = "artifact_unavailable"
        case digestMismatch = "digest_mismatch"
        case sizeMismatch = "size_mismatch"
        case artifactTooLarge = "artifact_too_large"
        case releaseConflict = "release_conflict"
        /// Fetching from `artifact.url` failed: an HTTP status, TLS, or the network after retries.
        case artifactFetchFailed = "artifact_fetch_failed"
        /// Fetching from `artifact.url` took longer than `fetch.deadline`.
        case artifactFetchDeadline = "artifact_fetch_deadline"
        // Deployment steps
        case extractionFailed = "extraction_failed"
        case diskFull = "disk_full"
        case prepareFailed = "prepare_failed"
        case activateFailed = "activate_failed"
        case healthCheckFailed = "health_check_failed"
        case bakeFailed = "bake_failed"
        case interrupted
        case rollbackFailed = "rollback_failed"
        case ioError = "io_error"
        case auditBroken = "audit_broken"
        // State
        /// An app's state file or a deployment record cannot be read as what it should be.
        case stateCorrupt = "state_corrupt"
    }

    public let code: Code
    public let message: String
    /// A more specific code from below (e.g. the extraction rule that refused an entry).
    public let detailCode: String?

    public init(_ code: Code, _ message: String, detailCode: String? = nil) {
        self.code = code
        self.message = message
        self.detailCode = detailCode
    }

    /// An I/O failure, with errno's words: ENOSPC and EDQUOT become `disk_full`.
    static func io(_ what: String, errno e: Int32 = errno) -> AgentError {
        let words = String(cString: strerror(e))
        if e == ENOSPC || e == EDQUOT {
            return AgentError(.diskFull, "\(what): \(words); free space in the data directory and deploy again")
        }
        return AgentError(.ioError, "\(what): \(words)")
    }

    /// The code reported outward: the specific one when there is one.
    public var reportedCode: String { detailCode ?? code.rawValue }

    public var info: ErrorInfo { ErrorInfo(code: reportedCode, message: message) }

    public var description: String { "\(reportedCode): \(message)" }
}
