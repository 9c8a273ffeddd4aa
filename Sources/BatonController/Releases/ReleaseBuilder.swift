import BatonProtocol
import Foundation

/// Builds the unsigned manifest of a release from the app file, the stored artifact and
/// the serial, and asks the agents which serial comes next.
public enum ReleaseBuilder {
    /// How long a new manifest stays valid by default: long enough for approvers.
    public static let defaultValidity = BatonDuration(milliseconds: 7 * 24 * 3_600_000)

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
    public static func agentSerials(client: AgentClient, hosts: [Fleet.Host], app: String) async
        -> (serials: [UInt64], unreachable: [(String, ErrorInfo)])
    {
        await withTaskGroup(of: (String, Result<UInt64?, AgentCallError>).self) { group in
            for host in hosts {
                group.addTask { (host.id, await client.appStatusResult(host, app: app).map { $0?.lastSerial }) }
            }
            var serials: [UInt64] = []
            var unreachable: [(String, ErrorInfo)] = []
            for await (id, result) in group {
                switch result {
                case .success(let serial): if let serial { serials.append(serial) }
                case .failure(let error): unreachable.append((id, error.info))
                }
            }
            return (serials, unreachable.sorted { $0.0 < $1.0 })
        }
    }
}
