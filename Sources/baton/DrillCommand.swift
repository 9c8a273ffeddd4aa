import ArgumentParser
import BatonCLISupport
import BatonController
import BatonProtocol
import Foundation

struct DrillCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drill",
        abstract: "Practise the way back on a few hosts: return to the previous release, health-check it, come forward again.",
        discussion: """
            Each host goes back to the release live before its current one by that release's \
            approved manifest (as `baton rollback` does), is health-checked there by its agent, \
            and returns to the release it was on. Takes the app's rollout lock; refused during a \
            change freeze. Ctrl-C or SIGTERM brings every host forward before exiting. Recorded \
            in the history as a drill with the time to recover. Exit 0 succeeded, 1 the way back \
            failed (every host is back), 3 a host needs attention (named, with the command that \
            puts it back), 4 the lock is held, 130/143 interrupted (every host is back).
            """)

    @Argument(help: "The app.") var app: String
    @Option(help: ArgumentHelp("The environment.", valueName: "env")) var environment: String
    @OptionGroup var selection: SelectionOptions
    @Option(name: .customLong("lock-wait"), help: ArgumentHelp("Wait this long for the app's rollout lock (default: do not wait; exit 4).", valueName: "duration"))
    var lockWait: BatonDuration?
    @Option(name: .customLong("recovery-wait"), help: ArgumentHelp("How long to wait for an agent that stops answering mid-drill before naming its host as needing attention.", valueName: "duration"))
    var recoveryWait: BatonDuration = .seconds(60)
    @OptionGroup var output: OutputOptions
    @OptionGroup var controller: ControllerOptions

    func run() async throws {
        try checkNames((app, "app"), (environment, "environment"))
        let context = try ControllerContext(controller)
        var hosts = try selection.hosts(in: try context.fleet(), environment: environment)
        // A drill changes live hosts: one of them unless they are named.
        if selection.hosts == nil { hosts = Array(hosts.prefix(1)) }
        let policy = try context.policy()
        let signingKey = try context.revertKey()
        let key = try reported { () throws(ControllerError) in
            try RollbackPreparation.signingKey(signingKey, environment: environment, policy: policy)
        }
        guard let history = try context.history() as? any HistoryStore & DeliveryHistory else {
            throw CLIError(.internalError, "the history store keeps no drills", exitCode: CLIError.Status.failure)
        }
        let json = output.json
        let say: @Sendable (String) -> Void = { json ? Output.error($0) : Output.line($0) }
        var drill = Drill(
            app: app, environment: environment, hosts: hosts, key: key, policy: policy, history: history, state: context.state,
            makeClient: context.agentClients,
            legProgress: { [output] hosts in json ? QuietProgress() as any ProgressRenderer : output.renderer(hosts: hosts) }, say: say)
        drill.lockWait = lockWait?.seconds ?? 0
        drill.recoveryWait = recoveryWait.seconds
        let ended: (record: DrillRecord, signal: Int32?)
        do {
            ended = try await drill.run()
        } catch let error as DrillError {
            // Refused before any host changed: a freeze before any host was asked.
            throw CLIError(error, exitCode: error.code == .changeFrozen ? CLIError.Status.usage : CLIError.Status.failure)
        } catch {
            throw CLIError.reporting(error)
        }
        let record = ended.record
        if json {
            Output.json(record)
        } else {
            let recover = record.timeToRecover.map { String(format: "; time to recover %.1fs", $0) } ?? ""
            Output.line("drill \(record.id): \(record.app) in \(record.environment) \(record.outcome?.rawValue ?? "unfinished")\(recover)")
            for host in record.hosts {
                let healthy = host.timeToRecover.map { String(format: " (healthy after %.1fs)", $0) } ?? " (\(host.back?.rawValue ?? "not started"))"
                Output.line("  \(host.host): \(host.original ?? "?") → \(host.previous ?? "?")\(healthy) → now \(host.final ?? "unknown")\(host.needsAttention ? "  NEEDS ATTENTION" : "")")
            }
            if let reason = record.reason { Output.line("  \(reason)") }
        }
        throw ExitCode(Drill.exitStatus(record, signal: ended.signal))
    }
}

/// The legs' progress under `--json`: the drill's record is the one object written.
private struct QuietProgress: ProgressRenderer {
    func handle(_ event: RolloutEvent) {}
    func finish(_ summary: RolloutSummary) {}
}
