import BatonProtocol
import Foundation

extension RolloutStateMachine {
    /// Hosts this rollout moved to the new release go back to the release that was live
    /// before, all at once (no canary, no batches): the revert must be fast. Each revert is
    /// the manifest that release was approved with (the agent serves it), with a new
    /// serial, signed by the controller's key alone (`rollbackThreshold`), and
    /// health-checked by the agent with the approved hooks and checks.
    mutating func startRevert(now: Date) {
        let switched = hostIDs.filter { results[$0]!.phase == .succeeded }
        guard !switched.isEmpty else {
            emit(.revert, message: "nothing to revert: no host was switched to \(manifest.release)", now: now)
            return finishRollout(now: now)
        }
        guard let keyID = revertKeyID else {
            for id in switched {
                results[id]!.error = ErrorInfo(
                    code: AgentCallError.Code.revertUnsigned.rawValue, message: "no controller signing key is configured, so the revert could not be signed")
                results[id]!.needsAttention = true
            }
            emit(.revert, message: "cannot revert \(switched.count) host(s): no controller signing key (signingKey in the controller configuration)", now: now)
            return finishRollout(now: now)
        }
        let plan = revertPlan(switched, now: now)
        revertSerial = plan.serial
        emit(.revert, message: "reverting \(plan.hosts.count) host(s) to their previous release at once (serial \(plan.serial), signed by keyid \(keyID.prefix(12)))", now: now)
        let hosts = plan.hosts
        guard !hosts.isEmpty else { return finishRollout(now: now) }
        for id in hosts { set(id, .reverting, message: "reverting to \(results[id]!.previousRelease ?? "?")", now: now) }
        stage = .reverting(remaining: Set(hosts))
        actions.append(.revert(plan))
    }

    /// Groups the switched hosts by the approved manifest each goes back to; a host that
    /// holds no approved earlier release stays where it is and needs a person.
    mutating func revertPlan(_ switched: [String], now: Date) -> RevertPlan {
        let serial = max(manifest.serial, priorStatus.values.compactMap(\.lastSerial).max() ?? 0) + 1
        var groups: [RevertGroup] = []
        for id in switched {
            let target = ReturnTarget.resolve(
                host: id, app: manifest.app, release: results[id]!.previousRelease, status: priorStatus[id])
            switch target {
            case .failure(let error):
                results[id]!.error = error
                results[id]!.needsAttention = true
                set(id, .succeeded, message: "cannot revert: \(error.message)", now: now)
            case .success(let held):
                if let index = groups.firstIndex(where: { $0.approvedPayloadDigest == held.approvedPayloadDigest }) {
                    groups[index].hosts.append(id)
                } else {
                    let revert = Manifest.returning(
                        to: held.approved, serial: serial, issuedAt: now, expiresAt: now.addingTimeInterval(ReturnTarget.validity.seconds),
                        notes: "revert of \(manifest.release) by rollout \(rolloutID): \(haltReason ?? "halted")")
                    groups.append(RevertGroup(approvedPayloadDigest: held.approvedPayloadDigest, manifest: revert, hosts: [id]))
                }
            }
        }
        return RevertPlan(serial: serial, groups: groups)
    }

    var isReverting: Bool {
        if case .reverting = stage { return true }
        return false
    }

    mutating func revertFinished(_ host: String, end: RevertEnd, now: Date) {
        guard case .reverting(var remaining) = stage, remaining.remove(host) != nil else { return }
        stage = .reverting(remaining: remaining)
        let previous = results[host]!.previousRelease ?? "?"
        switch end {
        case .ended(let phase, let deploymentID, let error):
            if phase == .succeeded {
                finish(host, .reverted, deploymentID: deploymentID, message: "back on \(previous), healthy", now: now)
            } else {
                results[host]!.needsAttention = true
                finish(host, .revertFailed, error: error, deploymentID: deploymentID,
                       message: "revert to \(previous) ended \(phase.rawValue)", now: now)
            }
        case .callFailed(let error):
            results[host]!.needsAttention = true
            finish(host, .revertFailed, error: error, message: "revert to \(previous) failed: \(error.message)", now: now)
        }
        if remaining.isEmpty { finishRollout(now: now) }
    }
}
