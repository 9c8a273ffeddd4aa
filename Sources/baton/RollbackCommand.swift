import ArgumentParser
import BatonCLISupport
import BatonController
import BatonProtocol
import Foundation

struct RollbackCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback",
        abstract: "Put every host of an environment back on its previous (or a named) release, at once.",
        discussion: """
            Signed by the controller's signing key alone: the agents accept a return to a release \
            that ran successfully there under the environment's rollbackThreshold. Each host is \
            health-checked with that release's approved checks; recorded as a rollout in the \
            history. Exit statuses as for `baton rollout`.
            """)

    @Argument(help: "The app.") var app: String
    @Option(help: ArgumentHelp("The environment.", valueName: "env")) var environment: String
    @Option(help: ArgumentHelp("The release to go back to (default: each host's previous one).", valueName: "release")) var to: String?
    @OptionGroup var selection: SelectionOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var controller: ControllerOptions

    func run() async throws {
        try checkNames((app, "app"), (environment, "environment"), (to, "release"))
        let context = try ControllerContext(controller)
        let hosts = try selection.hosts(in: try context.fleet(), environment: environment)
        let (key, policy) = (try context.revertKey(), try context.policy())
        let prepared: RollbackPreparation
        do {
            prepared = try await RollbackPreparation.prepare(
                app: app, environment: environment, to: to, hosts: hosts,
                key: try RollbackPreparation.signingKey(key, environment: environment, policy: policy),
                controllerSerial: context.state.lastSerial(app: app), makeClient: context.agentClients)
        } catch {
            throw error.cli
        }
        for (host, error) in prepared.unreachable { Output.error("warning: \(host) is unreachable (\(error.code)); it is not rolled back") }
        for (host, error) in prepared.plan.refused { Output.error("warning: \(host): \(error.code): \(error.message)") }
        let requests: [RolloutRequest]
        do { requests = try prepared.requests() } catch { throw error.cli }
        var worst: Int32 = 0
        for request in requests {
            worst = max(worst, try await context.runRollout(request, signers: [prepared.signer], output: output))
        }
        if prepared.isPartial { worst = max(worst, CLIError.Status.needsAttention) }
        throw ExitCode(worst)
    }
}
