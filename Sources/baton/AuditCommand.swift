import ArgumentParser
import BatonCLISupport
import BatonController
import BatonProtocol
import Foundation

/// `baton audit`: asks every host for its signed audit head, checks it against the last
/// one recorded, and records it. Evidence on a host can be rewritten by whoever holds the
/// host; the heads kept here show when that happened.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Check every host's audit log against the heads recorded before: went backwards, forked (rewritten), disappeared, broken.",
        discussion: """
            Each agent signs the head of its hash-chained audit log with its own TLS key. The controller checks the signature \
            against the certificate the agent presented, asks for the hash of the line where the last recorded head was, and \
            records the new head in its history. Exit status 1 when a host's log went backwards, was rewritten, disappeared, is \
            broken or its head is not signed by its key, or a host is unreachable. After investigating, --accept records the \
            current heads as the new baseline.
            """)

    @Option(help: ArgumentHelp("Only this environment.", valueName: "env")) var environment: String?
    @OptionGroup var selection: SelectionOptions
    @Flag(help: "Record the current heads as the new baseline, even those with a problem.") var accept = false
    @Flag(help: "JSON: one object per host.") var json = false
    @OptionGroup var controller: ControllerOptions

    struct Row: Encodable {
        var host: String
        var verdict: String
        var detail: String
        var lines: Int?
        var hash: String?
    }

    func run() async throws {
        let context = try ControllerContext(controller)
        let fleet = try context.fleet()
        let hosts = try selection.hosts(in: fleet, environment: environment)
        let history = try context.history()
        let client = try context.client(for: hosts, retry: .quick)
        var rows: [Row] = []
        for host in hosts {
            rows.append(await check(host, client: client, history: history))
        }
        await client.shutdown()
        if json {
            for row in rows { Output.line(String(decoding: (try? BatonJSON.encode(row)) ?? Data(), as: UTF8.self)) }
        } else {
            Output.line("HOST         LINES  VERDICT          DETAIL")
            for row in rows {
                Output.line("\(pad(row.host, 12)) \(pad(row.lines.map(String.init) ?? "-", 6)) \(pad(row.verdict, 16)) \(row.detail)")
            }
        }
        if rows.contains(where: { !["first", "consistent", "accepted"].contains($0.verdict) }) { throw ExitCode(1) }
    }

    private func check(_ host: Fleet.Host, client: any AgentClient, history: any HistoryStore) async -> Row {
        let previous: SeenAuditHead?
        do {
            previous = try history.lastAuditHead(host: host.id)
        } catch {
            return Row(host: host.id, verdict: error.code.rawValue, detail: error.message)
        }
        let head: SignedAuditHead
        do {
            head = try await client.auditHead(host, line: previous?.lines)
        } catch {
            return Row(host: host.id, verdict: "unreachable", detail: "\(error.info.code): \(error.info.message)")
        }
        let valid = client.certificate(of: host).map { AuditHeadCheck.signatureIsValid(head, certificate: $0.certificate) } ?? false
        let verdict = AuditHeadCheck.judge(head, previous: previous, signatureValid: valid)
        let recorded = accept && verdict.isProblem && valid ? "accepted" : verdict.code
        if valid {
            do {
                try history.recordAuditHead(
                    SeenAuditHead(
                        host: host.id, lines: head.lines, hash: head.hash, time: head.time, signature: head.signature,
                        seenAt: Date(), verdict: recorded))
            } catch {
                return Row(host: host.id, verdict: error.code.rawValue, detail: error.message, lines: head.lines, hash: head.hash)
            }
        }
        let detail = verdict.explanation + (recorded == "accepted" ? " (accepted as the new baseline)" : "")
        return Row(host: host.id, verdict: recorded, detail: detail, lines: head.lines, hash: head.hash)
    }
}
