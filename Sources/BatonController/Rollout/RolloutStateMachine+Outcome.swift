import BatonProtocol
import Foundation

extension RolloutStateMachine {
    // MARK: Host progress

    mutating func accepted(_ host: String, deploymentID: String, existing: Bool, now: Date) {
        guard results[host] != nil else { return }
        if isReverting {
            results[host]!.revertDeploymentID = deploymentID
            return
        }
        results[host]!.deploymentID = deploymentID
        set(host, .accepted, deploymentID: deploymentID,
            message: existing ? "the agent already has this deployment (\(deploymentID))" : "accepted as \(deploymentID)", now: now)
    }

    mutating func agentEvent(_ host: String, _ agentEvent: DeploymentEvent, now: Date) {
        // Terminal phases are reported once the deployment ends, with the record's error.
        guard results[host] != nil, !agentEvent.phase.isTerminal else { return }
        if isReverting {
            set(host, .reverting, deploymentID: agentEvent.deploymentID,
                message: "revert: \(agentEvent.phase.rawValue): \(agentEvent.message)", now: now)
        } else {
            set(host, HostPhase(agentEvent.phase), deploymentID: agentEvent.deploymentID, message: agentEvent.message,
                error: agentEvent.error, now: now)
        }
    }

    // MARK: Outcome

    mutating func finishRollout(now: Date) {
        markAttention()
        var outcome = decideOutcome()
        let summaryHalted: Bool
        if mode == .abort {
            if outcome == .failed || outcome == .succeeded { outcome = .aborted }
            summaryHalted = true
        } else {
            summaryHalted = halted
        }
        var summary = RolloutSummary(
            rolloutID: rolloutID, app: manifest.app, release: manifest.release, serial: manifest.serial,
            environment: manifest.environment, strategy: strategy.summary, outcome: outcome, halted: summaryHalted,
            haltReason: haltReason, startedAt: startedAt ?? now, finishedAt: now, hosts: hostIDs.map { results[$0]! })
        summary.revertSerial = revertSerial
        stage = .finished
        switch mode {
        case .run:
            emit(.finished, message: "rollout \(outcome.rawValue): \(summary.succeeded.count) succeeded, \(summary.failed.count) failed, \(summary.reverted.count) reverted, \(summary.unreachable.count) unreachable, \(summary.skipped.count) not deployed", now: now)
        case .abort:
            emit(.finished, message: "abort \(outcome.rawValue): \(summary.reverted.count) reverted, \(summary.failed.count) failed", now: now)
        }
        actions.append(.finish(summary))
    }

    /// Hosts whose state is unknown or wrong: a person should look.
    mutating func markAttention() {
        for id in hostIDs where [.unreachable, .rollbackFailed, .revertFailed].contains(results[id]!.phase)
            || [AgentCallError.Code.tlsFailed, .identityMismatch].map(\.rawValue).contains(results[id]!.error?.code ?? "")
        {
            results[id]!.needsAttention = true
        }
    }

    func decideOutcome() -> RolloutOutcome {
        if lockLost { return .abandoned }
        if results.values.contains(where: \.needsAttention) { return .needsAttention }
        if paused { return .paused }
        if results.values.allSatisfy({ $0.phase == .succeeded }) { return .succeeded }
        return .failed
    }

    // MARK: Reporting

    mutating func set(_ host: String, _ phase: HostPhase, deploymentID: String? = nil, message: String = "",
                      error: ErrorInfo? = nil, now: Date) {
        guard results[host] != nil else { return }
        results[host]!.phase = phase
        emit(.host, host: host, phase: phase, deploymentID: deploymentID, message: message.isEmpty ? phase.rawValue : message,
             error: error, now: now)
    }

    /// A host's final phase; failures count against the threshold.
    mutating func finish(_ host: String, _ phase: HostPhase, error: ErrorInfo? = nil, deploymentID: String? = nil,
                         message: String? = nil, now: Date) {
        guard results[host] != nil else { return }
        results[host]!.phase = phase
        results[host]!.finishedAt = now
        if let error { results[host]!.error = error }
        if let deploymentID, phase != .reverted, phase != .revertFailed, results[host]!.deploymentID == nil {
            results[host]!.deploymentID = deploymentID
        }
        if phase.isFailure { failures += 1 }
        emit(.host, host: host, phase: phase, deploymentID: deploymentID, message: message ?? error?.message ?? phase.rawValue,
             error: error, now: now)
    }

    mutating func emit(_ type: RolloutEvent.Kind, host: String? = nil, phase: HostPhase? = nil, wave: String? = nil,
                       deploymentID: String? = nil, message: String, error: ErrorInfo? = nil, now: Date) {
        actions.append(.emit(RolloutEvent(
            type: type, time: now, rolloutID: rolloutID, host: host, phase: phase,
            wave: wave ?? host.flatMap { results[$0]?.wave }, deploymentID: deploymentID, message: message, error: error)))
    }
}
