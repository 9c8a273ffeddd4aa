import ArgumentParser
import BatonCLISupport
import BatonController
import BatonProtocol
import Foundation

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
    @Option(
        name: .customLong("url"),
        help: ArgumentHelp(
            "Where agents may fetch the artifact (the manifest's artifact.url): an https:// or http:// URL serving the same bytes. `baton rollout --fetch` (or `deploy --fetch`) then uploads nothing.",
            valueName: "url"))
    var artifactURL: String?
}

extension ReleaseOptions {
    /// Stores the artifact and writes the unsigned manifest (`release create`, `deploy`).
    func create(app: String, context: ControllerContext) async throws(CLIError) -> ReleaseCreation.Created {
        try checkNames((app, "app"), (releaseName, "release"), (environment, "environment"))
        var requested: BatonDuration?
        if let text = expiresIn {
            guard let duration = BatonDuration(parsingValidity: text), duration.milliseconds > 0 else {
                throw CLIError(code: "invalid_value", message: "--expires-in '\(text)' is not a duration like 12h or 7d")
            }
            requested = duration
        }
        if let url = artifactURL {
            let problems = ArtifactReference.urlProblems(url)
            guard problems.isEmpty else {
                throw CLIError(code: "invalid_value", message: "--url '\(url)': \(problems.joined(separator: "; "))")
            }
        }
        let spec = ReleaseCreation.Spec(
            app: app, release: releaseName, environment: environment, artifactFile: artifact, notes: notes, source: source,
            expiresIn: requested, targets: targets, artifactURL: artifactURL)
        let (policy, definition, fleet) = (try context.policy(), try context.app(app), try context.fleet())
        let registry = try context.releaseStore()
        do {
            return try await ReleaseCreation.create(
                spec, definition: definition, fleet: fleet, policy: policy, state: context.state, makeClient: context.agentClients,
                registry: registry, warn: { Output.error($0) })
        } catch {
            throw error.cli
        }
    }
}
