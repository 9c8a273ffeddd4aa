import BatonProtocol
import Foundation

/// Builds the unsigned manifest of a release from the app file, the stored artifact and
/// the serial, and asks the agents which serial comes next.
public enum ReleaseBuilder {
    /// How long a new manifest stays valid by default: a working day for approvers and
    /// the rollout, and no more. Until it expires a signed manifest without `targets` can
    /// be replayed to a new or wiped host of its environment (which remembers no serial),
    /// so a short life is the default and a longer one is asked for with `--expires-in`.
    public static let defaultValidity = BatonDuration(milliseconds: 24 * 3_600_000)

    /// How long a release for `environment` is valid: `requested` if given, else
    /// `defaultValidity`, or the environment's `maxValidity` when that is shorter. A
    /// request beyond `maxValidity` is refused here rather than by every agent.
    public static func validity(
        requested: BatonDuration?, environment: String, policy: TrustPolicy?
    ) throws(ControllerError) -> BatonDuration {
        let limit = policy?.environments[environment]?.maxValidity
        guard let requested else { return limit.map { min($0, defaultValidity) } ?? defaultValidity }
        if let limit, requested > limit {
            throw ControllerError(
                .validityTooLong,
                "--expires-in \(requested) is longer than the \(limit) the trust policy allows for '\(environment)' (maxValidity); agents would refuse it")
        }
        return requested
    }

    /// The hosts a release for `environment` names: `requested` if given; else, when the
    /// trust policy requires targets there, every host the fleet lists for it now (a host
    /// added later needs a manifest of its own); else none (every host of the environment).
    public static func targets(
        requested: [String], environment: String, fleetHosts: [Fleet.Host], policy: TrustPolicy?
    ) throws(ControllerError) -> [String]? {
        let known = Set(fleetHosts.filter { $0.environment == environment }.map(\.id))
        if !requested.isEmpty {
            let unknown = Set(requested).subtracting(known)
            guard unknown.isEmpty else {
                throw ControllerError(
                    .noHosts, "--target \(unknown.sorted().joined(separator: ", ")) is not a host of '\(environment)' in the fleet file")
            }
            return Array(Set(requested)).sorted()
        }
        guard policy?.environments[environment]?.requireTargets == true else { return nil }
        return known.sorted()
    }

    public static func manifest(
        definition: AppDefinition, release: String, environment: String, artifact: ArtifactReference, serial: UInt64,
        notes: String? = nil, source: String? = nil, targets: [String]? = nil, now: Date = Date(),
        validFor: BatonDuration = defaultValidity
    ) throws(ControllerError) -> Manifest {
        guard definition.environments.contains(environment) else {
            throw ControllerError(
                .wrongEnvironment,
                "\(definition.app) deploys to \(definition.environments.joined(separator: ", ")), not '\(environment)' (environments: in its app file)")
        }
        let issued = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))
        let manifest = Manifest(
            app: definition.app, release: release, serial: serial, environment: environment, targets: targets,
            issuedAt: issued, expiresAt: issued.addingTimeInterval(validFor.seconds), artifact: artifact,
            hooks: definition.hooks, health: definition.health, bake: definition.bake, keep: definition.keep,
            notes: notes, owner: definition.owner, source: source)
        let problems = manifest.problems()
        guard problems.isEmpty else {
            throw ControllerError(.configurationInvalid, "the manifest would be invalid: \(problems.joined(separator: "; "))")
        }
        return manifest
    }

    /// Above every serial the agents report and above the controller's own record.
    public static func nextSerial(agentSerials: [UInt64], controllerSerial: UInt64) -> UInt64 {
        max(agentSerials.max() ?? 0, controllerSerial) + 1
    }

    /// Asks every host for the app's last serial, in parallel. Hosts that do not answer
    /// are returned too: their serial is unknown, and the caller says so.
    public static func agentSerials(client: any AgentClient, hosts: [Fleet.Host], app: String, fanOut: FanOut = .quick) async
        -> (serials: [UInt64], unreachable: [(String, ErrorInfo)])
    {
        let answers = await fanOut.ask(hosts) { host throws(AgentCallError) in try await client.appStatus(host, app: app)?.lastSerial }
        return (answers.compactMap { $0.value ?? nil }, answers.compactMap { answer in answer.error.map { (answer.host.id, $0.info) } })
    }
}
