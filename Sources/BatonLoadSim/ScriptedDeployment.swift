import BatonProtocol
import Foundation
import NIOCore

/// One deployment's whole course, decided the moment it is accepted: every event it will
/// report, each with the time it becomes true. A request sees the events already due, so
/// a deployment moves on without a timer of its own and 2,000 of them cost nothing while
/// nobody watches.
struct ScriptedDeployment: Sendable {
    /// The record as it stands once the deployment has ended: every event, timing and
    /// health attempt.
    let final: DeploymentRecord
    /// `due[i]` is when `final.events[i]` happens.
    let due: [NIODeadline]
    /// The verified manifest, kept for the held releases and the verifier's history.
    let manifest: Manifest
    /// The release `current` names once it has ended.
    let live: String?
    /// Signed on first request after the end, then kept.
    var receipt: SignedReceipt?

    var endsAt: NIODeadline { due[due.count - 1] }

    /// What the agent reports at `now`: the events due so far, the phase of the last one.
    func record(at now: NIODeadline) -> DeploymentRecord {
        let visible = max(1, due.firstIndex { $0 > now } ?? due.count)
        if visible == due.count { return final }
        var record = final
        record.events = Array(final.events.prefix(visible))
        let last = record.events[visible - 1]
        record.phase = last.phase
        record.error = nil
        record.finishedAt = nil
        record.updatedAt = last.time
        record.timings = Array(final.timings.prefix(visible))
        record.timings[visible - 1].endedAt = nil
        record.healthAttempts = final.healthAttempts.filter { $0.time <= last.time }
        return record
    }

    /// The events with their times, for a stream.
    var schedule: [(due: NIODeadline, event: DeploymentEvent)] { Array(zip(due, final.events)) }

    /// Scripts a deployment of `verified` on `hostID`, accepted at `acceptedAt` (`start` on
    /// the monotonic clock). The phases are the real agent's (docs/design.md §5); a
    /// deployment drawn to fail switches, fails its health check and rolls back to
    /// `previous` (or fails outright when there is nothing to go back to).
    static func script(
        id: String, hostID: String, verified: VerifiedManifest, previous: String?, holdsArtifact: Bool,
        settings: SimulationSettings, acceptedAt: Date, start: NIODeadline
    ) -> ScriptedDeployment {
        let manifest = verified.manifest
        typealias Step = (phase: DeploymentPhase, message: String, error: ErrorInfo?)
        var steps: [Step] = [(.accepted, "accepted \(manifest.release) (serial \(manifest.serial))", nil)]
        var live = previous
        let ends: (DeploymentPhase, String, ErrorInfo?)
        if !holdsArtifact, manifest.artifact.url == nil {
            steps.append((.fetching, "the artifact is not here and the manifest names no url", nil))
            ends = (.failed, "failed: artifact unavailable", ErrorInfo(
                code: "artifact_unavailable",
                message: "artifact sha256:\(manifest.artifact.sha256) was never uploaded and the manifest has no url"))
        } else {
            if !holdsArtifact { steps.append((.fetching, "fetching \(manifest.artifact.url ?? "")", nil)) }
            steps.append((.unpacking, "unpacking sha256:\(manifest.artifact.sha256.prefix(12))", nil))
            steps.append((.preparing, "preparing \(manifest.release)", nil))
            steps.append((.switching, "switching current to \(manifest.release)", nil))
            steps.append((.activating, "activating \(manifest.release)", nil))
            steps.append((.checking, "running health checks", nil))
            let fails = settings.failsHealth(
                hostID: hostID, release: manifest.release, serial: manifest.serial, isReturn: verified.isRollback)
            if fails {
                let error = ErrorInfo(
                    code: "health_check_failed",
                    message: "health check 'simulated' failed on \(manifest.release) (baton-loadsim --fail-rate)")
                ends = previous == nil
                    ? (.failed, "health check failed; there is no previous release to restore", error)
                    : (.rolledBack, "health check failed; \(previous ?? "") restored and healthy", error)
            } else {
                if manifest.effectiveBake.milliseconds > 0 { steps.append((.baking, "baking", nil)) }
                ends = (.succeeded, "\(manifest.release) is live", nil)
                live = manifest.release
            }
        }
        steps.append(ends)

        var due: [NIODeadline] = []
        var offsets: [TimeAmount] = []
        var offset = TimeAmount.zero
        for index in steps.indices {
            if index > 0 { offset = offset + settings.phaseLatency(hostID: hostID, deploymentID: id, index: index) }
            offsets.append(offset)
            due.append(start + offset)
        }
        let times = offsets.map { acceptedAt.addingTimeInterval(Double($0.nanoseconds) / 1e9) }

        var record = DeploymentRecord(
            id: id, hostID: hostID, app: manifest.app, release: manifest.release, serial: manifest.serial,
            environment: manifest.environment, payloadDigest: verified.payloadDigest, artifactSHA256: manifest.artifact.sha256,
            signers: verified.signers, isRollback: verified.isRollback, previousRelease: previous, phase: ends.0,
            createdAt: acceptedAt, owner: manifest.owner, notes: manifest.notes, source: manifest.source)
        record.events = steps.enumerated().map { index, step in
            DeploymentEvent(
                sequence: index + 1, time: times[index], deploymentID: id, app: manifest.app, release: manifest.release,
                phase: step.phase, message: step.message, error: step.error)
        }
        record.timings = steps.indices.dropLast().map { PhaseTiming(phase: steps[$0].phase, startedAt: times[$0], endedAt: times[$0 + 1]) }
        if let checking = steps.firstIndex(where: { $0.phase == .checking }) {
            let passed = ends.0 == .succeeded
            let time = times[checking + 1]
            record.healthAttempts = [HealthAttempt(
                stage: "checking", release: manifest.release, check: "simulated", time: time,
                durationMilliseconds: Int((time.timeIntervalSince(times[checking]) * 1000).rounded()), passed: passed,
                detail: passed ? "passed" : "failed (simulated)")]
        }
        record.error = ends.2
        record.updatedAt = times[times.count - 1]
        record.finishedAt = times[times.count - 1]
        return ScriptedDeployment(final: record, due: due, manifest: manifest, live: live, receipt: nil)
    }
}
