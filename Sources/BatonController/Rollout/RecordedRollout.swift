import BatonProtocol
import Foundation

/// A rollout from the history, picked up again by `baton rollout resume` or `abort`
/// (possibly by another controller process than the one that started it).
public struct RecordedRollout: Sendable {
    public var record: RolloutRecord
    public var info: RolloutResumeInfo
    public var manifest: Manifest

    /// What `resume` continues: one still running (its controller died), paused, or abandoned.
    public static let resumable: Set<RolloutOutcome?> = [nil, .paused, .abandoned]
    /// What `abort` ends: those, and one that needs attention.
    public static let abortable: Set<RolloutOutcome?> = [nil, .paused, .needsAttention, .abandoned]

    /// Loads rollout `id`; `rollout_unknown` when the history lacks it, `rollout_finished`
    /// when its outcome is not in `allowed`.
    public static func load(_ id: String, from history: any HistoryStore, allowed: Set<RolloutOutcome?>) throws(ControllerError) -> RecordedRollout {
        guard let record = try history.rollout(id: id), let info = try history.resumeInfo(rolloutID: id) else {
            throw ControllerError(.rolloutUnknown, "no rollout '\(id)' in the history; `baton history` lists them")
        }
        guard allowed.contains(record.outcome) else {
            throw ControllerError(
                .rolloutFinished,
                "rollout \(id) already ended (\(record.outcome?.rawValue ?? "?")); start a new rollout or `baton rollback` instead")
        }
        let manifest: Manifest
        do { manifest = try Manifest.parse(payload: try Envelope.parse(info.envelope).payload) } catch {
            throw ControllerError(.stateError, "the stored envelope of \(id) cannot be read: \(error.message)")
        }
        return RecordedRollout(record: record, info: info, manifest: manifest)
    }

    /// The request that picks the rollout up: its hosts as the fleet file describes them now,
    /// no pause after the canary and no canary analysis (that pause is what is being resumed), the artifact where it
    /// still is, and each host's release before the rollout, as first recorded.
    public func request(fleet: Fleet, state: ControllerState, revertKey: SigningKey?) throws(ControllerError) -> RolloutRequest {
        var hosts: [Fleet.Host] = []
        for id in info.hostIDs {
            guard let host = fleet.hosts.first(where: { $0.id == id }) else {
                throw ControllerError(.noHosts, "host '\(id)' of rollout \(record.id) is no longer in the fleet file")
            }
            hosts.append(host)
        }
        var strategy = info.strategy
        strategy.pauseAfterCanary = false
        // The canary's analysis was what paused it (inconclusive): a person has decided.
        strategy.analysis = nil
        let artifact = info.artifactFile.flatMap { FileManager.default.fileExists(atPath: $0) ? $0 : nil }
            ?? (state.hasArtifact(manifest.artifact.sha256) ? state.artifactPath(manifest.artifact.sha256) : nil)
        var request = RolloutRequest(
            rolloutID: record.id, envelope: info.envelope, manifest: manifest, hosts: hosts, strategy: strategy, artifactFile: artifact,
            revertKey: revertKey)
        for host in record.hosts { if let previous = host.previousRelease { request.knownPrevious[host.host] = previous } }
        request.kind = record.kind
        return request
    }
}
