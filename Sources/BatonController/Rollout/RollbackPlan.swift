import BatonProtocol
import Foundation

/// `baton rollback`: every host of an environment back on its previous release (or a
/// named one it still holds), at once. One manifest per target release, naming its hosts
/// in `targets`, with the artifact the agent reports for that release, signed by the
/// controller's key: the agents accept it under `rollbackThreshold` because the release
/// ran there before, and switch without any upload.
public enum RollbackPlan {
    public struct Group: Sendable {
        public var release: String
        public var hosts: [Fleet.Host]
        public var envelope: [UInt8]
        public var manifest: Manifest
    }

    public struct Plan: Sendable {
        public var groups: [Group]
        /// Hosts that cannot go back, and why.
        public var refused: [(host: String, error: ErrorInfo)]
    }

    public static func make(
        app: String, environment: String, to named: String?, hosts: [Fleet.Host], statuses: [String: AppStatus],
        controllerSerial: UInt64, key: SigningKey, now: Date = Date()
    ) -> Plan {
        var targets: [String: (ArtifactReference, [Fleet.Host])] = [:]
        var refused: [(String, ErrorInfo)] = []
        for host in hosts {
            guard let status = statuses[host.id] else {
                refused.append((host.id, ErrorInfo(code: "app_unknown", message: "\(host.id) has never run \(app)")))
                continue
            }
            guard let release = named ?? status.previous else {
                refused.append((host.id, ErrorInfo(code: "no_previous_release", message: "\(host.id) has no earlier release of \(app) to go back to")))
                continue
            }
            guard status.succeededReleases.contains(release), let artifact = status.releaseArtifacts?[release] else {
                refused.append((host.id, ErrorInfo(
                    code: "release_not_on_host",
                    message: "\(host.id) does not hold \(release) as a release that ran successfully (it has: \(status.releases.joined(separator: ", ")))")))
                continue
            }
            if status.current == release, named != nil {
                continue  // already there: nothing to do
            }
            targets["\(release)@\(artifact.sha256)", default: (artifact, [])].1.append(host)
        }
        let serial = max(statuses.values.compactMap(\.lastSerial).max() ?? 0, controllerSerial) + 1
        var groups: [Group] = []
        for (target, (artifact, groupHosts)) in targets.sorted(by: { $0.key < $1.key }) {
            let release = String(target[..<target.lastIndex(of: "@")!])
            let manifest = Manifest(
                app: app, release: release, serial: serial, environment: environment, targets: groupHosts.map(\.id),
                issuedAt: now, expiresAt: now.addingTimeInterval(3600), artifact: artifact,
                notes: "rollback by \(ControllerActor.current)")
            guard let payload = try? BatonJSON.encode(manifest) else { continue }
            var envelope = Envelope(payloadType: Manifest.payloadType, payload: Array(payload))
            envelope.sign(with: key)
            groups.append(Group(release: release, hosts: groupHosts, envelope: Array(envelope.serialized(pretty: false)), manifest: manifest))
        }
        return Plan(groups: groups, refused: refused)
    }
}
