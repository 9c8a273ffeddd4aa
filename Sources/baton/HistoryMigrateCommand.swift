import ArgumentParser
import BatonCLISupport
import BatonController
import BatonProtocol
import Foundation

extension HistoryCommand {
    /// `baton history migrate --to postgres`: the SQLite history of this machine into the
    /// shared database (`HistoryCopy`).
    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "migrate",
            abstract: "Copy this machine's SQLite history into the team's PostgreSQL store.",
            discussion: """
                Copies rollouts with their hosts, events and resume information, audit heads, lock events \
                and terms, releases, approvals and serial counters, in one transaction. What the database \
                already has is left as it is, so running it again (or for another machine's file) copies only \
                what is new. Held locks are not copied: finish or abort running rollouts first. The database is \
                --url, else the configured `history: {postgres: ...}` (or BATON_HISTORY_POSTGRES).
                """)
        @Option(help: ArgumentHelp("The store to copy into; only `postgres`.", valueName: "store")) var to: String
        @Option(help: ArgumentHelp("The PostgreSQL database (postgres://user@host[:port]/database); default: the configured one.", valueName: "url"))
        var url: String?
        @Option(help: ArgumentHelp("The SQLite file to copy (default: history.sqlite in the state directory).", valueName: "file"))
        var from: String?
        @Flag(help: "JSON: {copied: {...}, present: {...}}.") var json = false
        @OptionGroup var controller: ControllerOptions

        func run() async throws {
            guard to == "postgres" else {
                throw CLIError(code: "invalid_value", message: "--to is `postgres` (the only store to migrate to), not '\(to)'")
            }
            let context = try ControllerContext(controller)
            let database: PostgresStoreConfiguration
            if let url {
                do { database = try PostgresStoreConfiguration(url: url) } catch { throw error.cli }
            } else if case .postgres(let configured) = context.configuration.history {
                database = configured
            } else {
                throw CLIError(
                    code: "configuration_invalid",
                    message: "no PostgreSQL store to migrate to: pass --url postgres://user@host/database, or set history: {postgres: URL} in baton.yaml or BATON_HISTORY_POSTGRES")
            }
            let file = from ?? "\(context.state.root)/history.sqlite"
            guard FileManager.default.fileExists(atPath: file) else {
                throw CLIError(.fileNotFound, "no SQLite history at '\(file)' (--from FILE, or --state-dir DIR)")
            }
            let counts: HistoryCopy.Counts
            do {
                let source = try SQLiteHistoryStore(path: file)
                let target = try PostgresHistoryStore(database)
                counts = try HistoryCopy.copy(from: source, to: target)
            } catch {
                throw error.cli
            }
            if json {
                Output.json(counts)
                return
            }
            Output.line("copied \(file) into \(database.description):")
            for kind in HistoryCopy.Counts.kinds {
                Output.line("  \(pad(kind, 11)) \(counts.copied[kind] ?? 0) copied, \(counts.present[kind] ?? 0) already there")
            }
        }
    }
}
