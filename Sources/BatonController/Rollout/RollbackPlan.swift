import BatonProtocol
import Foundation

/// `baton rollback`: every host of an environment back on the release that was live
/// before (or a named one it still holds), at once. Each return is the manifest that
/// release was approved with, as the agent serves it, with a new serial, validity and
/// reason, signed by the controller's key: the agents accept it under `rollbackThreshold`
/// because it is exactly what was approved, and switch without any upload. One envelope
/// per approved manifest.
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
        controllerSerial: UInt64, key: SigningKey, now: Date = Date(), notes: String? = nil
    ) -> Plan {
        var targets: [String: (HeldRelease, [Fleet.Host])] = [:]
        var refused: [(String, ErrorInfo)] = []
        for host in hosts {
            let status = statuses[host.id]
            if let named, status?.current == named {
                continue  // already there: nothing to do
            }
            switch ReturnTarget.resolve(host: host.id, app: app, release: named ?? status?.previous, named: named != nil, status: status) {
            case .success(let held): targets[held.approvedPayloadDigest, default: (held, [])].1.append(host)
            case .failure(let error): refused.append((host.id, error))
            }
        }
        let serial = max(statuses.values.compactMap(\.lastSerial).max() ?? 0, controllerSerial) + 1
        var groups: [Group] = []
        for (_, (held, groupHosts)) in targets.sorted(by: { ($0.value.0.release, $0.key) < ($1.value.0.release, $1.key) }) {
            let manifest = Manifest.returning(
                to: held.approved, serial: serial, issuedAt: now, expiresAt: now.addingTimeInterval(ReturnTarget.validity.seconds),
                notes: notes ?? "rollback by \(ControllerActor.current)")
            guard let envelope = try? Envelope.signing(manifest, with: key) else { continue }
            groups.append(Group(release: held.release, hosts: groupHosts, envelope: envelope, manifest: manifest))
        }
        return Plan(groups: groups, refused: refused)
    }
}
