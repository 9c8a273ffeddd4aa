import BatonProtocol
import Foundation

/// `baton release create` and the first step of `baton deploy`: stores the artifact, asks
/// the environment's agents for the app's last serial, and writes the unsigned manifest.
public enum ReleaseCreation {
    /// What the operator asked for.
    public struct Spec: Sendable {
        public var app: String
        public var release: String
        public var environment: String
        public var artifactFile: String
        public var notes: String?
        public var source: String?
        /// Nil: the default validity, or the environment's `maxValidity` when shorter.
        public var expiresIn: BatonDuration?
        /// Empty: any host of the environment, or all it has now when the policy requires targets.
        public var targets: [String]
        /// The manifest's `artifact.url`: where agents may fetch the artifact instead of
        /// being sent it (`baton rollout --fetch`, or any controller that does not hold it).
        public var artifactURL: String?

        public init(app: String, release: String, environment: String, artifactFile: String, notes: String? = nil,
                    source: String? = nil, expiresIn: BatonDuration? = nil, targets: [String] = [], artifactURL: String? = nil) {
            self.app = app
            self.release = release
            self.environment = environment
            self.artifactFile = artifactFile
            self.notes = notes
            self.source = source
            self.expiresIn = expiresIn
            self.targets = targets
            self.artifactURL = artifactURL
        }
    }

    public struct Created: Sendable {
        public var manifest: Manifest
        /// The environment's hosts, which were asked for their serials.
        public var hosts: [Fleet.Host]
        /// The manifest's bytes as written and registered: what approvers sign.
        public var payload: [UInt8]
    }

    /// `warn` hears of every host that did not answer: its serial is unknown, so the new
    /// one may be refused there. With a `registry` (the history store) the serial comes from
    /// its counter for the app and environment, above what the agents and this controller
    /// report, and the release is registered there for `baton approve` and
    /// `baton rollout APP@RELEASE` on any controller sharing the store.
    public static func create(
        _ spec: Spec, definition: AppDefinition, fleet: Fleet, policy: TrustPolicy?, state: ControllerState,
        makeClient: AgentClientFactory, registry: (any ReleaseRegistry)? = nil, warn: @Sendable (String) -> Void
    ) async throws(ControllerError) -> Created {
        let validity = try ReleaseBuilder.validity(requested: spec.expiresIn, environment: spec.environment, policy: policy)
        let targets = try ReleaseBuilder.targets(
            requested: spec.targets, environment: spec.environment, fleetHosts: fleet.hosts, policy: policy)
        let hosts = fleet.hosts.filter { $0.environment == spec.environment }
        guard definition.environments.contains(spec.environment) else {
            throw ControllerError(
                .wrongEnvironment,
                "\(spec.app) deploys to \(definition.environments.joined(separator: ", ")), not '\(spec.environment)' (environments: in its app file)")
        }
        guard !hosts.isEmpty else {
            throw ControllerError(.noHosts, "the fleet has no host in environment '\(spec.environment)'")
        }
        if let url = spec.artifactURL {
            let problems = ArtifactReference.urlProblems(url)
            guard problems.isEmpty else { throw ControllerError(.configurationInvalid, problems.joined(separator: "; ")) }
        }
        // The agents are asked while the artifact is hashed and stored: neither needs the
        // other, and the answers (a TLS handshake per host) take about as long as storing a
        // 16 MB artifact, so the two no longer add up before a deploy's first upload.
        let (stored, answers) = try await withAgentClient(for: hosts, retry: .quick, using: makeClient) {
            client throws(ControllerError) in
            async let asked = ReleaseBuilder.agentSerials(client: client, hosts: hosts, app: spec.app)
            let stored = try state.storeArtifact(spec.artifactFile)
            return (stored, await asked)
        }
        var artifact = stored
        artifact.url = spec.artifactURL
        let (serials, unreachable) = answers
        for (host, error) in unreachable {
            warn("warning: \(host) did not answer (\(error.code)); its serial is unknown, so the rollout may find it refuses this one")
        }
        var serial = ReleaseBuilder.nextSerial(agentSerials: serials, controllerSerial: state.lastSerial(app: spec.app))
        if let registry {
            // One counter per app and environment for every controller sharing the store.
            serial = try registry.nextSerial(app: spec.app, environment: spec.environment, above: serial - 1)
        }
        let manifest = try ReleaseBuilder.manifest(
            definition: definition, release: spec.release, environment: spec.environment, artifact: artifact,
            serial: serial, notes: spec.notes, source: spec.source, targets: targets, validFor: validity)
        let payload: [UInt8]
        do { payload = Array(try BatonJSON.encode(manifest, pretty: true)) } catch {
            throw ControllerError(.stateError, "cannot encode the manifest: \(error)")
        }
        try state.saveManifest(manifest)
        try state.recordSerial(app: spec.app, serial)
        try registry?.registerRelease(RegisteredRelease(
            manifest: manifest, payload: payload, artifactHolder: ControllerActor.current,
            artifactPath: state.artifactPath(artifact.sha256), createdBy: ControllerActor.current, createdAt: Date()))
        return Created(manifest: manifest, hosts: hosts, payload: payload)
    }
}
