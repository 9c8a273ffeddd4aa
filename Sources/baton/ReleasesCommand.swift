import ArgumentParser
import BatonCLISupport
import BatonController
import BatonProtocol
import Foundation

/// `baton releases APP`: what each host holds of an app, as its agent reports it.
struct ReleasesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "releases",
        abstract: "Per host: the live release, the one live before it (the way back), and the other releases it holds.",
        discussion: "Held releases can be returned to under the rollback threshold (`baton rollback --to`). Exit status 1 when a host cannot be asked.")

    @Argument(help: "The app.") var app: String
    @Option(help: ArgumentHelp("Only this environment.", valueName: "env")) var environment: String?
    @OptionGroup var selection: SelectionOptions
    @Flag(help: "JSON: one object per host.") var json = false
    @OptionGroup var controller: ControllerOptions

    func run() async throws {
        try checkNames((app, "app"), (environment, "environment"))
        let context = try ControllerContext(controller)
        let hosts = try selection.hosts(in: try context.fleet(), environment: environment)
        let rows = try await context.withAgentClient(for: hosts, retry: .quick) { client in
            await FleetReleases.query(client: client, hosts: hosts, app: app)
        }
        if json {
            for row in rows { Output.json(row) }
        } else {
            Output.line("HOST         CURRENT          PREVIOUS         ALSO HELD")
            for row in rows {
                if let error = row.error {
                    Output.line("\(pad(row.host, 12)) UNREACHABLE: \(error.code): \(error.message)")
                } else {
                    let others = row.others.isEmpty ? "-" : row.others.joined(separator: ", ")
                    Output.line("\(pad(row.host, 12)) \(pad(row.current ?? "-", 16)) \(pad(row.previous ?? "-", 16)) \(others)")
                }
            }
        }
        if rows.contains(where: { $0.error != nil }) { throw ExitCode(1) }
    }
}
