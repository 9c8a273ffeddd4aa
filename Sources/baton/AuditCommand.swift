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

    func run() async throws {
        let context = try ControllerContext(controller)
        let hosts = try selection.hosts(in: try context.fleet(), environment: environment)
        let history = try context.history()
        let rows = try await context.withAgentClient(for: hosts, retry: .quick) { client in
            await AuditSweep.run(client: client, hosts: hosts, history: history, accept: accept)
        }
        if json {
            for row in rows { Output.json(row) }
        } else {
            Output.line("HOST         LINES  VERDICT          DETAIL")
            for row in rows {
                Output.line("\(pad(row.host, 12)) \(pad(row.lines.map(String.init) ?? "-", 6)) \(pad(row.verdict, 16)) \(row.detail)")
            }
        }
        if rows.contains(where: \.isProblem) { throw ExitCode(1) }
    }
}
