@testable import BatonAgent
import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

/// The one table from codes to HTTP statuses against what Protocol/PROTOCOL.md promises:
/// every code of every kind the API can answer with, read from the document itself so
/// the two cannot drift apart.
@Suite("API statuses")
struct APIStatusTests {
    /// `code → status` as PROTOCOL.md states it: the rows of its code tables
    /// (`| \`code\` | 403 | ...`) and the prose form (`411 \`length_required\``).
    static let documented: [String: Int] = {
        let text = (try? String(contentsOfFile: ProcessRunner.packageRoot + "/Protocol/PROTOCOL.md", encoding: .utf8)) ?? ""
        var statuses: [String: Int] = [:]
        let row = /\|\s*`([a-z_]+)`\s*\|\s*([1-5][0-9][0-9])\s*\|/
        let prose = /\b([1-5][0-9][0-9]) `([a-z_]+)`/
        for match in text.matches(of: row) { statuses[String(match.1)] = Int(match.2) }
        for match in text.matches(of: prose) where statuses[String(match.2)] == nil {
            statuses[String(match.2)] = Int(match.1)
        }
        return statuses
    }()

    static let protocolText =
        (try? String(contentsOfFile: ProcessRunner.packageRoot + "/Protocol/PROTOCOL.md", encoding: .utf8)) ?? ""

    @Test("the document was read")
    func documentRead() {
        #expect(Self.documented["forbidden_identity"] == 403)
        #expect(Self.documented.count >= 30, "\(Self.documented)")
    }

    @Test("every agent code: the documented status, or 500 for codes only deployment records carry", arguments: AgentError.Code.allCases)
    func agentCodes(code: AgentError.Code) {
        #expect(Self.protocolText.contains("`\(code.rawValue)`"), "PROTOCOL.md never names \(code.rawValue)")
        let status = APIStatus.of(code)
        #expect(APIStatus.of(code: code.rawValue) == status)
        if let documented = Self.documented[code.rawValue] {
            #expect(status == documented, "\(code.rawValue)")
        } else {
            // Record-only codes (a failed step): never a request's answer but a failure's
            // reason; if one ever answered a request, it would be the agent's fault.
            #expect(status == 500 || code == .releaseConflict, "\(code.rawValue) → \(status)")
        }
    }

    @Test("every verification code: its documented status", arguments: VerificationCode.allCases)
    func verificationCodes(code: VerificationCode) throws {
        let documented = try #require(Self.documented[code.rawValue], "PROTOCOL.md gives no status for \(code.rawValue)")
        #expect(APIStatus.of(code: code.rawValue) == documented)
        #expect(code.httpStatus == documented)
    }

    @Test("every code of the HTTP layer: its documented status where the document gives one", arguments: APICode.allCases)
    func httpLayerCodes(code: APICode) {
        let status = APIStatus.of(code)
        #expect(APIStatus.of(code: code.rawValue) == status)
        if let documented = Self.documented[code.rawValue] {
            #expect(status == documented, "\(code.rawValue)")
        }
        #expect((400...599).contains(status))
    }

    @Test("a code the table does not know answers 500")
    func unknownCode() {
        #expect(APIStatus.of(code: "path_traversal") == 500)
        #expect(APIStatus.of(code: "") == 500)
    }

    @Test("an agent error is answered by its own code's status, its reported code kept")
    func agentErrorWithDetail() {
        let refusal = APIRefusal(AgentError(.diskFull, "no space", detailCode: "some_detail"))
        #expect(refusal.status.code == 507)
        #expect(refusal.info == ErrorInfo(code: "some_detail", message: "no space"))
        let request = APIRefusal(RequestError(.deploymentInProgress, "wait"))
        #expect(request.status.code == 409)
        #expect(request.info.code == "deployment_in_progress")
        #expect(APIRefusal(VerificationError(.staleSerial, "old")).status.code == 409)
        #expect(APIRefusal(CancellationError()).status.code == 503)
        #expect(APIRefusal(CancellationError()).info.code == "shutting_down")
        #expect(APIRefusal(TestSupportError("boom")).info.code == "internal_error")
        #expect(APIRefusal(TestSupportError("boom")).status.code == 500)
    }
}
