import ArgumentParser
import BatonCLISupport
import BatonController
import BatonProtocol
import Foundation

/// `baton deploy`: `release create`, one signature and `rollout` in one step.
struct DeployCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deploy",
        abstract: "Create, sign and roll out a release in one step (the CI path, for threshold-1 environments).",
        discussion: "Exit statuses as for `baton rollout`.")

    @Argument(help: "The app.") var app: String
    @OptionGroup var release: ReleaseOptions
    @Option(help: ArgumentHelp("The Ed25519 key that signs the release.", valueName: "file")) var key: String
    @Flag(help: "Upload nothing: every agent fetches the artifact from --url (the controller still hashes and stores it).")
    var fetch = false
    @OptionGroup var selection: SelectionOptions
    @OptionGroup var strategy: StrategyOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var controller: ControllerOptions

    func validate() throws {
        if fetch, release.artifactURL == nil {
            throw ValidationError("--fetch needs --url: the agents fetch the artifact from the manifest's artifact.url")
        }
    }

    func run() async throws {
        let context = try ControllerContext(controller)
        // The serials and then the rollout ask the same agents: one TLS connection each.
        let hosts = (try? context.fleet().hosts.filter { $0.environment == release.environment }) ?? []
        try await context.withSharedConnections(to: hosts) { context in try await deploy(context) }
    }

    private func deploy(_ context: ControllerContext) async throws {
        let strategy = try strategy.strategy()
        let signingKey = try loadSigningKey(key)
        let created = try await release.create(app: app, context: context)
        try context.recordApproval(of: created, with: signingKey)
        let bytes: [UInt8]
        do { bytes = try Envelope.signing(created.manifest, with: signingKey) } catch { throw CLIError(.internalError, "\(error)") }
        let envelopePath = "\(context.state.root)/releases/\(app)/\(created.manifest.release).envelope.json"
        try OperatorFiles.write(Data(bytes), to: envelopePath)
        let checked: RolloutPreflight.Checked
        do {
            var input = RolloutPreflight.Input(
                envelope: bytes, envelopeFile: envelopePath, fleet: try context.fleet(), environment: release.environment,
                hostIDs: selection.hostIDs, selector: try selection.labels(), artifactFile: nil, policy: try context.policy())
            input.fetch = fetch
            checked = try RolloutPreflight.check(input, state: context.state)
        } catch {
            throw cliError(error)
        }
        let request = checked.request(envelope: bytes, strategy: strategy, revertKey: try context.revertKey() ?? signingKey)
        throw ExitCode(try await context.runRollout(request, signers: checked.signerNames, output: output))
    }
}
