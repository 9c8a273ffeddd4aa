import ArgumentParser
import BatonCLISupport
import BatonController
import BatonProtocol
import Foundation

extension HistoryCommand {
    /// Opening the store applies what it lacks (PostgreSQL: in one transaction under an
    /// advisory lock), so this also migrates a new shared database before a team uses it.
    struct Migrations: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "migrations",
            abstract: "The history store's schema migrations, applying any missing ones first.")
        @Flag(help: "JSON: an array of {id, name, appliedAt}.") var json = false
        @OptionGroup var controller: ControllerOptions

        func run() async throws {
            let context = try ControllerContext(controller)
            let history = try context.history()
            let applied: [AppliedMigration]
            do { applied = try history.migrations() } catch { throw error.cli }
            if json {
                Output.line(String(decoding: (try? BatonJSON.encode(applied, pretty: true)) ?? Data(), as: UTF8.self))
                return
            }
            switch context.configuration.history {
            case .sqlite: Output.line("store: sqlite \(context.state.root)/history.sqlite")
            case .postgres(let database): Output.line("store: \(database.description) (tls \(database.tls.rawValue))")
            }
            for migration in applied {
                Output.line("\(migration.id) \(migration.name)\(migration.appliedAt.map { " applied \(RFC3339.format($0))" } ?? "")")
            }
        }
    }
}
