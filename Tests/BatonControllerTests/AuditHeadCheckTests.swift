import BatonController
import BatonProtocol
import Foundation
import Testing

@Suite struct AuditHeadCheckTests {
    static let time = Date(timeIntervalSince1970: 1_800_000_000)

    static func seen(lines: Int, hash: String) -> SeenAuditHead {
        SeenAuditHead(host: "web-1", lines: lines, hash: hash, time: time, signature: "", seenAt: time, verdict: "consistent")
    }

    static func head(lines: Int, hash: String, at: (Int, String?)? = nil, problem: String? = nil) -> SignedAuditHead {
        SignedAuditHead(
            hostID: "web-1", lines: lines, hash: hash, time: time, signature: "",
            at: at.map { SignedAuditHead.LineHash(line: $0.0, hash: $0.1) }, problem: problem)
    }

    @Test func verdicts() {
        let recorded = Self.seen(lines: 5, hash: "h5")
        #expect(AuditHeadCheck.judge(Self.head(lines: 5, hash: "h5"), previous: nil, signatureValid: true) == .first)
        #expect(AuditHeadCheck.judge(Self.head(lines: 5, hash: "h5"), previous: recorded, signatureValid: true) == .consistent(addedLines: 0))
        #expect(AuditHeadCheck.judge(Self.head(lines: 8, hash: "h8", at: (5, "h5")), previous: recorded, signatureValid: true)
            == .consistent(addedLines: 3))
        #expect(AuditHeadCheck.judge(Self.head(lines: 8, hash: "h8", at: (5, "other")), previous: recorded, signatureValid: true)
            == .forked(atLine: 5))
        #expect(AuditHeadCheck.judge(Self.head(lines: 5, hash: "other"), previous: recorded, signatureValid: true) == .forked(atLine: 5))
        #expect(AuditHeadCheck.judge(Self.head(lines: 3, hash: "h3"), previous: recorded, signatureValid: true)
            == .wentBackwards(from: 5, to: 3))
        #expect(AuditHeadCheck.judge(Self.head(lines: 0, hash: String(repeating: "0", count: 64)), previous: recorded, signatureValid: true)
            == .disappeared(recorded: 5))
        #expect(AuditHeadCheck.judge(Self.head(lines: 6, hash: "h6", at: (5, "h5"), problem: "line 2"), previous: recorded, signatureValid: true)
            == .broken("line 2"))
        // A head that is not signed by the agent's key says nothing.
        #expect(AuditHeadCheck.judge(Self.head(lines: 8, hash: "h8", at: (5, "h5")), previous: recorded, signatureValid: false)
            == .badSignature)
        #expect(!AuditHeadVerdict.first.isProblem && AuditHeadVerdict.forked(atLine: 1).isProblem)
    }
}
