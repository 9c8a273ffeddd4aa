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
    @OptionGroup var selection: SelectionOptions
    @OptionGroup var strategy: StrategyOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var controller: ControllerOptions

    func run() async throws {
        let context = try ControllerContext(controller)
        let strategy = try strategy.strategy()
        let signingKey = try loadSigningKey(key)
        let created = try await release.create(app: app, context: context)
        let payload: Data
        do { payload = try BatonJSON.encode(created.manifest) } catch { throw CLIError(code: "internal_error", message: "\(error)") }
        var envelope = Envelope(payloadType: Manifest.payloadType, payload: Array(payload))
        envelope.sign(with: signingKey)
        let bytes = Array(envelope.serialized(pretty: false))
        let envelopePath = "\(context.state.root)/releases/\(app)/\(created.manifest.release).envelope.json"
        try OperatorFiles.write(Data(bytes), to: envelopePath)
        let checked: RolloutPreflight.Checked
        do {
            checked = try RolloutPreflight.check(
                .init(envelope: bytes, envelopeFile: envelopePath, fleet: try context.fleet(), environment: release.environment,
                      hostIDs: selection.hostIDs, selector: try selection.labels(), artifactFile: nil, policy: try context.policy()),
                state: context.state)
        } catch {
            throw cliError(error)
        }
        var request = RolloutRequest(
            rolloutID: RolloutRequest.newID(app: app), envelope: bytes, manifest: checked.manifest, hosts: checked.hosts,
            strategy: strategy, artifactFile: checked.artifactFile, revertKey: try context.revertKey() ?? signingKey)
        request.breakGlass = checked.breakGlass
        throw ExitCode(try await context.runRollout(request, signers: checked.signers.map { $0.names.first ?? $0.keyid }, output: output))
    }
}
