import ArgumentParser
import BatonCLISupport
import BatonController
import BatonProtocol
import Foundation

struct HistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "Past rollouts: who ran what where, and how each host ended.",
        subcommands: [List.self, Show.self],
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
            Output.line("ROLLOUT                            APP        RELEASE          ENV          OUTCOME          HOSTS  BY")
            for r in rollouts {
                let ok = r.hosts.filter { $0.phase == .succeeded }.count
                Output.line([pad(r.id, 34), pad(r.app, 10), pad(r.release, 16), pad(r.environment, 12),
                             pad(r.outcome?.rawValue ?? "running?", 16), pad("\(ok)/\(r.hosts.count)", 6), r.actor].joined(separator: " "))
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One rollout: its hosts' results and every event.")
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

struct LockCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lock",
        abstract: "Rollout locks: one running rollout per app and environment.",
        subcommands: [List.self, Break.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Locks held now, and (with --events) what happened to locks.")
        @Flag(help: "Also list acquisitions, releases, takeovers and breaks.") var events = false
        @Flag(help: "JSON.") var json = false
        @OptionGroup var controller: ControllerOptions

        func run() async throws {
            let history = try ControllerContext(controller).history()
            let locks: [RolloutLock]
            let lockEvents: [LockEvent]
            do {
                locks = try history.locks()
                lockEvents = events ? try history.lockEvents(app: nil) : []
            } catch { throw error.cli }
            if json {
                struct Shown: Encodable { var locks: [RolloutLock]; var events: [LockEvent]? }
                Output.line(String(decoding: (try? BatonJSON.encode(Shown(locks: locks, events: events ? lockEvents : nil), pretty: true)) ?? Data(), as: UTF8.self))
                return
            }
            if locks.isEmpty { Output.line("no locks held") }
            let now = Date()
            for lock in locks {
                let state = lock.expiresAt > now ? "lease until \(RFC3339.format(lock.expiresAt))" : "lease EXPIRED at \(RFC3339.format(lock.expiresAt)) (can be taken over)"
                Output.line("\(lock.app) \(lock.environment): rollout \(lock.rolloutID) by \(lock.owner) (pid \(lock.pid), term \(lock.term)) since \(RFC3339.format(lock.acquiredAt)); \(state)")
            }
            for event in lockEvents {
                Output.line("\(RFC3339.format(event.time)) \(event.app) \(event.environment) \(event.action) by \(event.actor)\(event.rolloutID.map { " (rollout \($0))" } ?? "")\(event.detail.map { ": \($0)" } ?? "")")
            }
        }
    }

    struct Break: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a lock whoever holds it (recorded with the reason).")
        @Argument(help: "The app.") var app: String
        @Argument(help: "The environment.") var environment: String
        @Option(help: "Why: recorded in the lock's history.") var reason: String
        @OptionGroup var controller: ControllerOptions

        func run() async throws {
            try checkNames((app, "app"), (environment, "environment"))
            let history = try ControllerContext(controller).history()
            let broken: RolloutLock?
            do { broken = try history.breakLock(app: app, environment: environment, actor: ControllerActor.current, reason: reason, now: Date()) } catch { throw error.cli }
            guard let broken else {
                throw CLIError(code: "lock_not_held", message: "no lock is held for \(app) in \(environment)", exitCode: CLIError.Status.failure)
            }
            Output.line("broke the lock of \(app) in \(environment) held by rollout \(broken.rolloutID) (\(broken.owner), pid \(broken.pid)); recorded with the reason")
        }
    }
}

func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
}
