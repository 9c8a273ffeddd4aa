import ArgumentParser
import BatonCLISupport
import BatonController
import BatonProtocol
import Foundation

struct LockCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lock",
        abstract: "Rollout locks: one running rollout per app and environment.",
        subcommands: [List.self, Break.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "Locks held now, and (with --events) what happened to locks.")
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
        static let configuration = CommandConfiguration(commandName: "break", abstract: "Remove a lock whoever holds it (recorded with the reason).")
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
