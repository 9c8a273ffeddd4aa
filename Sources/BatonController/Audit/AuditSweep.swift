import BatonPKI
import BatonProtocol
import Foundation

/// `baton audit`: asks every host for its signed audit head (with the hash of the line
/// where the last recorded head was), judges it against that head, and records it when
/// its signature holds. Evidence on a host can be rewritten by whoever holds the host;
/// the heads kept in the controller's history show when that happened.
public enum AuditSweep {
    public struct Row: Codable, Sendable, Equatable {
        public var host: String
        /// `first`, `consistent`, `accepted`, or the problem's code (`unreachable`, a store error).
        public var verdict: String
        public var detail: String
        public var lines: Int?
        public var hash: String?

        /// Whether this host's log needs someone to look at it.
        public var isProblem: Bool { !SeenAuditHead.baselineVerdicts.contains(verdict) }
    }

    /// `accept`: heads with a problem (but a valid signature) become the new baseline.
    public static func run(
        client: any AgentClient, hosts: [Fleet.Host], history: any HistoryStore, accept: Bool, fanOut: FanOut = .quick,
        now: @escaping @Sendable () -> Date = { Date() }
    ) async -> [Row] {
        var previous: [String: SeenAuditHead] = [:]
        var storeErrors: [String: ControllerError] = [:]
        for host in hosts {
            do { previous[host.id] = try history.lastAuditHead(host: host.id) } catch { storeErrors[host.id] = error }
        }
        let asked = hosts.filter { storeErrors[$0.id] == nil }
        let known = previous
        let answers = await fanOut.ask(asked) { host throws(AgentCallError) in
            try await client.auditHead(host, line: known[host.id]?.lines)
        }
        var rows: [String: Row] = [:]
        for (id, error) in storeErrors { rows[id] = Row(host: id, verdict: error.code.rawValue, detail: error.message) }
        for answer in answers {
            rows[answer.host.id] = judge(
                answer, previous: previous[answer.host.id], certificate: client.certificate(of: answer.host), history: history,
                accept: accept, now: now())
        }
        return hosts.compactMap { rows[$0.id] }
    }

    static func judge(
        _ answer: HostAnswer<SignedAuditHead>, previous: SeenAuditHead?, certificate: PeerCertificate?, history: any HistoryStore,
        accept: Bool, now: Date
    ) -> Row {
        let host = answer.host.id
        let head: SignedAuditHead
        switch answer.result {
        case .failure(let error): return Row(host: host, verdict: "unreachable", detail: "\(error.info.code): \(error.info.message)")
        case .success(let signed): head = signed
        }
        let valid = certificate.map { AuditHeadCheck.signatureIsValid(head, certificate: $0.certificate) } ?? false
        let verdict = AuditHeadCheck.judge(head, previous: previous, signatureValid: valid)
        let recorded = accept && verdict.isProblem && valid ? "accepted" : verdict.code
        if valid {
            do {
                try history.recordAuditHead(
                    SeenAuditHead(
                        host: host, lines: head.lines, hash: head.hash, time: head.time, signature: head.signature, seenAt: now,
                        verdict: recorded))
            } catch {
                return Row(host: host, verdict: error.code.rawValue, detail: error.message, lines: head.lines, hash: head.hash)
            }
        }
        let detail = verdict.explanation + (recorded == "accepted" ? " (accepted as the new baseline)" : "")
        return Row(host: host, verdict: recorded, detail: detail, lines: head.lines, hash: head.hash)
    }
}
