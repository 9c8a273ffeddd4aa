import ArgumentParser
import BatonCLISupport
import BatonController
import BatonProtocol
import Foundation

/// `baton rollout ENVELOPE ...`: checks the request, then runs it in a rollout session.
struct RolloutStartCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "start",
        abstract: "Roll a signed release out to the fleet: canary, batches, failure threshold, revert on halt.",
        discussion: """
            Checks everything it can before contacting any agent (envelope and trust policy, \
            environment, hosts, artifact digest), then asks every host for its state, uploads the \
            artifact where missing (or, with --fetch or when the controller does not hold it, lets \
            every agent fetch the manifest's artifact.url) and deploys wave by wave. When the failure threshold is exceeded \
            (or the canary fails) the rollout halts and every host it switched is reverted at once \
            with a manifest signed by the controller's key.

            Exit status: 0 all hosts succeeded; 1 the rollout failed and every host is on a known \
            healthy release (reverted, rolled back or untouched); 3 hosts need attention (revert or \
            rollback failed, unreachable); 4 the app's rollout lock is held by another live rollout, or this \
            one lost its lock and stopped (abandoned); 5 paused after the canary; 2 usage or configuration errors.
            """)

    @Argument(help: "The signed envelope (from `baton manifest sign`), or APP@RELEASE: a registered release with its approvals (`baton approve`).")
    var envelope: String
    @Option(help: ArgumentHelp("The artifact file, checked against the manifest's digest (default: the controller's store).", valueName: "file"))
    var artifact: String?
    @Flag(help: "Upload nothing: every agent fetches the artifact from the manifest's artifact.url (the default when the controller does not hold the artifact).")
    var fetch = false
    @Option(help: ArgumentHelp("The environment expected (default: the manifest's).", valueName: "env")) var environment: String?
    @OptionGroup var selection: SelectionOptions
    @OptionGroup var strategy: StrategyOptions
    @OptionGroup var output: OutputOptions
    @Flag(name: .customLong("dry-run"), help: "Only plan: what would happen per host (`baton plan`); nothing changes.") var dryRun = false
    @Option(name: .customLong("lock-wait"), help: ArgumentHelp("Wait this long for the app's rollout lock (default: do not wait; exit 4).", valueName: "duration"))
    var lockWait: BatonDuration?
    @OptionGroup var controller: ControllerOptions

    func validate() throws {
        if fetch, artifact != nil {
            throw ValidationError("--fetch and --artifact exclude each other: with --fetch the agents fetch artifact.url and nothing is uploaded")
        }
    }

    func run() async throws {
        if dryRun {
            throw ExitCode(try await PlanCommand.plan(
                envelope: envelope, artifact: artifact, environment: environment, selection: selection,
                strategy: try strategy.strategy(), json: output.json, controller: controller, fetch: fetch))
        }
        let context = try ControllerContext(controller)
        let strategy = try strategy.strategy()
        // `APP@RELEASE`: the registered release with its approvals from the history store.
        let bytes = try ReleaseApprovals.looksLikeReference(envelope)
            ? Data(try context.approvedEnvelope(envelope, environment: environment))
            : OperatorFiles.read(envelope, what: "envelope")
        let checked: RolloutPreflight.Checked
        do {
            try ArtifactWhereabouts.check(
                envelope: Array(bytes), artifactFile: artifact, state: context.state, registry: try context.releaseStore())
            var input = RolloutPreflight.Input(
                envelope: Array(bytes), envelopeFile: envelope, fleet: try context.fleet(),
                environment: environment, hostIDs: selection.hostIDs, selector: try selection.labels(),
                artifactFile: artifact, policy: try context.policy())
            input.fetch = fetch
            checked = try RolloutPreflight.check(input, state: context.state)
        } catch {
            throw cliError(error)
        }
        var withAnalysis = strategy
        // The app file's canary analysis, when it has one and the rollout has a canary.
        if strategy.canary > 0, (try? context.configuration.appFile(checked.manifest.app)) != nil {
            withAnalysis.analysis = try context.app(checked.manifest.app).analysis
        }
        let request = checked.request(envelope: Array(bytes), strategy: withAnalysis, revertKey: try context.revertKey())
        throw ExitCode(try await context.runRollout(request, signers: checked.signerNames, output: output, lockWait: lockWait?.seconds ?? 0))
    }
}
