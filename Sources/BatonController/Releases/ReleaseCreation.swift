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

        public init(app: String, release: String, environment: String, artifactFile: String, notes: String? = nil,
                    source: String? = nil, expiresIn: BatonDuration? = nil, targets: [String] = []) {
            self.app = app
            self.release = release
            self.environment = environment
            self.artifactFile = artifactFile
            self.notes = notes
            self.source = source
            self.expiresIn = expiresIn
            self.targets = targets
        }
    }

    public struct Created: Sendable {
        public var manifest: Manifest
        /// The environment's hosts, which were asked for their serials.
        public var hosts: [Fleet.Host]
    }

    /// `warn` hears of every host that did not answer: its serial is unknown, so the new
    /// one may be refused there.
    public static func create(
        _ spec: Spec, definition: AppDefinition, fleet: Fleet, policy: TrustPolicy?, state: ControllerState,
        makeClient: AgentClientFactory, warn: @Sendable (String) -> Void
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
        let artifact = try state.storeArtifact(spec.artifactFile)
        let (serials, unreachable) = try await withAgentClient(for: hosts, retry: .quick, using: makeClient) { client in
            await ReleaseBuilder.agentSerials(client: client, hosts: hosts, app: spec.app)
        }
        for (host, error) in unreachable {
            warn("warning: \(host) did not answer (\(error.code)); its serial is unknown, so the rollout may find it refuses this one")
        }
        let serial = ReleaseBuilder.nextSerial(agentSerials: serials, controllerSerial: state.lastSerial(app: spec.app))
        let manifest = try ReleaseBuilder.manifest(
            definition: definition, release: spec.release, environment: spec.environment, artifact: artifact,
            serial: serial, notes: spec.notes, source: spec.source, targets: targets, validFor: validity)
        try state.saveManifest(manifest)
        try state.recordSerial(app: spec.app, serial)
        return Created(manifest: manifest, hosts: hosts)
    }
}
