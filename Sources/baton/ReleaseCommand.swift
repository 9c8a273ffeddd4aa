import ArgumentParser
import BatonCLISupport
import BatonController
import BatonProtocol
import Foundation

struct ReleaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "release",
        abstract: "Register an artifact and write the unsigned manifest of a release.",
        subcommands: [Create.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Hash and store the artifact, pick the next serial, write the unsigned manifest.",
            discussion: """
                The serial is above every serial the environment's agents report for the app and above \
                the controller's own record. Hooks, health checks, bake, keep and owner come from the \
                app file. Approvers then sign the manifest with `baton manifest sign`.
                """)

        @Argument(help: "The app (its app file is <apps>/<app>.yaml).") var app: String
        @OptionGroup var release: ReleaseOptions
        @Option(name: [.short, .customLong("output")], help: ArgumentHelp("Where to write the manifest (default: APP-RELEASE.manifest.json).", valueName: "file"))
        var outputFile: String?
        @OptionGroup var controller: ControllerOptions

        func run() async throws {
            let context = try ControllerContext(controller)
            let created = try await ReleaseCreation.create(release, app: app, context: context)
            let path = outputFile ?? "\(app)-\(created.manifest.release).manifest.json"
            let data: Data
            do { data = try BatonJSON.encode(created.manifest, pretty: true) } catch {
                throw CLIError(code: "internal_error", message: "\(error)")
            }
            try OperatorFiles.write(data, to: path)
            Output.line("wrote \(path): \(app) \(created.manifest.release), serial \(created.manifest.serial), \(created.manifest.environment), artifact sha256:\(created.manifest.artifact.sha256) (\(created.manifest.artifact.size) bytes)")
            Output.line("next: baton manifest sign \(path) --key KEY   (each approver), then: baton rollout \(ManifestCommand.Sign.envelopeName(for: path))")
        }
    }
}

/// What a release is made of, shared by `release create` and `deploy`.
struct ReleaseOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The artifact: a .tar or .tar.gz of the release tree.", valueName: "file")) var artifact: String
    @Option(name: .customLong("release"), help: ArgumentHelp("The release name, e.g. 2026.11.22-1.", valueName: "name")) var releaseName: String
    @Option(help: ArgumentHelp("The environment it is for.", valueName: "env")) var environment: String
    @Option(help: ArgumentHelp("Release notes, for people.", valueName: "text")) var notes: String?
    @Option(help: ArgumentHelp("The commit or build it came from.", valueName: "ref")) var source: String?
    @Option(
        name: .customLong("expires-in"),
        help: ArgumentHelp(
            "How long the manifest stays valid (default 24h, or the environment's maxValidity in the trust policy if shorter).",
            valueName: "duration"))
    var expiresIn: String?
    @Option(
        name: .customLong("target"),
        help: ArgumentHelp(
            "A host the manifest may run on (repeat for more). Default: any host of the environment, or, when the trust policy sets requireTargets, the hosts the fleet file lists for it now.",
            valueName: "host"))
    var targets: [String] = []
}

enum ReleaseCreation {
    struct Created {
        var manifest: Manifest
        var hosts: [Fleet.Host]
    }

    static func create(_ options: ReleaseOptions, app: String, context: ControllerContext) async throws(CLIError) -> Created {
        try checkNames((app, "app"), (options.releaseName, "release"), (options.environment, "environment"))
        var requested: BatonDuration?
        if let text = options.expiresIn {
            guard let duration = BatonDuration(parsingValidity: text), duration.milliseconds > 0 else {
                throw CLIError(code: "invalid_value", message: "--expires-in '\(text)' is not a duration like 12h or 7d")
            }
            requested = duration
        }
        let policy = try context.policy()
        let validity: BatonDuration
        let targets: [String]?
        let definition = try context.app(app)
        let fleet = try context.fleet()
        do {
            validity = try ReleaseBuilder.validity(requested: requested, environment: options.environment, policy: policy)
            targets = try ReleaseBuilder.targets(
                requested: options.targets, environment: options.environment, fleetHosts: fleet.hosts, policy: policy)
        } catch {
            throw error.cli
        }
        let hosts = fleet.hosts.filter { $0.environment == options.environment }
        guard definition.environments.contains(options.environment) else {
            throw CLIError(
                code: "wrong_environment",
                message: "\(app) deploys to \(definition.environments.joined(separator: ", ")), not '\(options.environment)' (environments: in its app file)")
        }
        guard !hosts.isEmpty else {
            throw CLIError(code: "no_hosts", message: "the fleet has no host in environment '\(options.environment)'")
        }
        do {
            let artifact = try context.state.storeArtifact(options.artifact)
            let client = try context.client(for: hosts, retry: .quick)
            let (serials, unreachable) = await ReleaseBuilder.agentSerials(client: client, hosts: hosts, app: app)
            await client.shutdown()
            for (host, error) in unreachable {
                Output.error("warning: \(host) did not answer (\(error.code)); its serial is unknown, so the rollout may find it refuses this one")
            }
            let serial = ReleaseBuilder.nextSerial(agentSerials: serials, controllerSerial: context.state.lastSerial(app: app))
            let manifest = try ReleaseBuilder.manifest(
                definition: definition, release: options.releaseName, environment: options.environment, artifact: artifact,
                serial: serial, notes: options.notes, source: options.source, targets: targets, validFor: validity)
            try context.state.saveManifest(manifest)
            try context.state.recordSerial(app: app, serial)
            return Created(manifest: manifest, hosts: hosts)
        } catch let error as ControllerError {
            throw error.cli
        } catch let error as CLIError {
            throw error
        } catch {
            throw CLIError(code: "internal_error", message: "\(error)")
        }
    }
}

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
        let created = try await ReleaseCreation.create(release, app: app, context: context)
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
        let request = RolloutRequest(
            rolloutID: RolloutRequest.newID(app: app), envelope: bytes, manifest: checked.manifest, hosts: checked.hosts,
            strategy: strategy, artifactFile: checked.artifactFile, revertKey: try context.revertKey() ?? signingKey)
        throw ExitCode(try await RolloutExecution.run(
            request, context: context, output: output, signers: checked.signers.map { $0.names.first ?? $0.keyid }))
    }
}
