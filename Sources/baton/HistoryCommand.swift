import ArgumentParser
import BatonCLISupport
import BatonController
import BatonProtocol
import Foundation

struct HistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "Past rollouts: who ran what where, and how each host ended.",
        subcommands: [List.self, Show.self, Migrations.self, Migrate.self],
        defaultSubcommand: List.self
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "Rollouts, newest first (the default).")
        @Argument(help: "Only this app.") var app: String?
        @Option(help: "How many.") var limit = 20
        @Flag(help: "JSON: an array of rollouts.") var json = false
        @OptionGroup var controller: ControllerOptions

        func run() async throws {
            try checkNames((app, "app"))
            let history = try ControllerContext(controller).history()
            let rollouts: [RolloutRecord]
            do { rollouts = try history.rollouts(app: app, limit: max(1, limit)) } catch { throw error.cli }
            if json {
                Output.line(String(decoding: (try? BatonJSON.encode(rollouts, pretty: true)) ?? Data(), as: UTF8.self))
                return
            }
            if rollouts.isEmpty {
                Output.line("no rollouts recorded\(app.map { " for \($0)" } ?? "")")
                return
            }
            Output.line("ROLLOUT                            APP        RELEASE          ENV          KIND      OUTCOME          HOSTS  BY")
            for r in rollouts {
                let ok = r.hosts.filter { $0.phase == .succeeded }.count
                Output.line([pad(r.id, 34), pad(r.app, 10), pad(r.release, 16), pad(r.environment, 12), pad(r.kind.rawValue, 9),
                             pad(r.outcome?.rawValue ?? "running?", 16), pad("\(ok)/\(r.hosts.count)", 6), r.actor].joined(separator: " "))
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "One rollout: its hosts' results and every event.")
        @Argument(help: "The rollout id.") var rolloutID: String
        @Flag(help: "JSON: the rollout with its hosts and events.") var json = false
        @OptionGroup var controller: ControllerOptions

        func run() async throws {
            let history = try ControllerContext(controller).history()
            let record: RolloutRecord?
            let events: [RolloutEvent]
            do {
                record = try history.rollout(id: rolloutID)
                events = try history.events(rolloutID: rolloutID)
            } catch { throw error.cli }
            guard let record else {
                throw CLIError(code: "rollout_unknown", message: "no rollout '\(rolloutID)' in the history; `baton history` lists them")
            }
            if json {
                struct Shown: Encodable { var rollout: RolloutRecord; var events: [RolloutEvent] }
                Output.line(String(decoding: (try? BatonJSON.encode(Shown(rollout: record, events: events), pretty: true)) ?? Data(), as: UTF8.self))
                return
            }
            Output.line("rollout:   \(record.id)")
            Output.line("release:   \(record.app) \(record.release) (serial \(record.serial)) to \(record.environment)")
            Output.line("by:        \(record.actor); signed by \(record.signers.joined(separator: ", "))")
            if record.breakGlass { Output.line("freeze:    BREAK GLASS: went out during a change freeze, signed to break glass") }
            if let owner = record.owner { Output.line("owner:     \(owner)") }
            if let notes = record.notes { Output.line("notes:     \(notes)") }
            if let source = record.source { Output.line("source:    \(source)") }
            Output.line("strategy:  \(record.strategy)")
            Output.line("started:   \(RFC3339.format(record.startedAt))\(record.finishedAt.map { ", finished \(RFC3339.format($0))" } ?? "")")
            Output.line("outcome:   \(record.outcome?.rawValue ?? "unfinished (its controller stopped)")\(record.exitStatus.map { " (exit \($0))" } ?? "")\(record.haltReason.map { "; halted: \($0)" } ?? "")")
            Output.line("hosts:")
            for host in record.hosts {
                Output.line("  \(pad(host.host, 14)) \(pad(host.phase.rawValue, 16)) \(host.deploymentID ?? "-")\(host.error.map { "  \($0.code): \($0.message)" } ?? "")")
            }
            Output.line("events:")
            for event in events {
                Output.line("  \(RFC3339.format(event.time)) \(event.host.map { "\($0) " } ?? "")\(event.phase.map { "\($0.rawValue): " } ?? "")\(event.message)")
            }
        }
    }
}
