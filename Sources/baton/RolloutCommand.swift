import ArgumentParser
import BatonCLISupport
import BatonController
import BatonProtocol
import Foundation

struct RolloutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollout",
        abstract: "Roll a signed release out to the fleet: canary, batches, failure threshold, revert on halt.",
        discussion: """
            Checks everything it can before contacting any agent (envelope and trust policy, \
            environment, hosts, artifact digest), then asks every host for its state, uploads the \
            artifact where missing and deploys wave by wave. When the failure threshold is exceeded \
            (or the canary fails) the rollout halts and every host it switched is reverted at once \
            with a manifest signed by the controller's key.

            Exit status: 0 all hosts succeeded; 1 the rollout failed and every host is on a known \
            healthy release (reverted, rolled back or untouched); 3 hosts need attention (revert or \
            rollback failed, unreachable); 5 paused after the canary; 2 usage or configuration errors.
            """)

    @Argument(help: "The signed envelope (from `baton manifest sign`).") var envelope: String
    @Option(help: ArgumentHelp("The artifact file, checked against the manifest's digest (default: the controller's store).", valueName: "file"))
    var artifact: String?
    @Option(help: ArgumentHelp("The environment expected (default: the manifest's).", valueName: "env")) var environment: String?
    @OptionGroup var selection: SelectionOptions
    @OptionGroup var strategy: StrategyOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var controller: ControllerOptions

    func run() async throws {
        let context = try ControllerContext(controller)
        let bytes = try OperatorFiles.read(envelope, what: "envelope")
        let strategy = try strategy.strategy()
        let checked: RolloutPreflight.Checked
        do {
            checked = try RolloutPreflight.check(
                .init(envelope: Array(bytes), envelopeFile: envelope, fleet: try context.fleet(),
                      environment: environment, hostIDs: selection.hostIDs, selector: try selection.labels(),
                      artifactFile: artifact, policy: try context.policy()),
                state: context.state)
        } catch {
            throw cliError(error)
        }
        let request = RolloutRequest(
            rolloutID: RolloutRequest.newID(app: checked.manifest.app), envelope: Array(bytes), manifest: checked.manifest,
            hosts: checked.hosts, strategy: strategy, artifactFile: checked.artifactFile, revertKey: try context.revertKey())
        let status = try await RolloutExecution.run(request, context: context, output: output)
        throw ExitCode(status)
    }
}

/// Runs a checked rollout request with the chosen progress display, records it in the
/// state directory, and returns the exit status.
enum RolloutExecution {
    static func run(_ request: RolloutRequest, context: ControllerContext, output: OutputOptions) async throws(CLIError) -> Int32 {
        do { try context.state.prepare() } catch { throw error.cli }
        try? context.state.recordSerial(app: request.manifest.app, request.manifest.serial)
        let client = try context.client(for: request.hosts)
        let renderer = output.renderer(hosts: request.hosts.map(\.id))
        let state = context.state
        let runner = RolloutRunner(client: client, request: request) { event in
            state.appendEvent(event)
            renderer.handle(event)
        }
        let summary = await runner.run()
        await client.shutdown()
        if let revertSerial = summary.revertSerial {
            try? context.state.recordSerial(app: request.manifest.app, revertSerial)
        }
        try? context.state.saveRollout(summary)
        renderer.finish(summary)
        return summary.exitStatus
    }
}
