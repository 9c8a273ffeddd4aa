import BatonProtocol
import Foundation

/// Turns a rollout's event stream and summary into at most one notification per
/// milestone: host events only update counts, they are never sent on their own (a
/// notification per host per phase is what makes people mute a channel).
///
/// Severities:
/// - `started`: info.
/// - `paused` (after a healthy canary, waiting for `resume` or `abort`): warning.
/// - `halted`: warning; critical when a host already needs a person (rollback failed,
///   unreachable) or the rollout lost its lock.
/// - `reverted`: warning; critical when any revert failed.
/// - `finished`: info when it succeeded; warning when it failed or was aborted with every
///   host on a known release; critical for `needs_attention` and `abandoned`.
///
/// A paused rollout sends `paused` and no `finished`: it has not finished. `reverted` is
/// sent when the controller reverted hosts, just before `finished`.
public struct RolloutMilestones: Sendable {
    let identity: RolloutIdentity
    private var phases: [String: HostPhase] = [:]
    private var rolloutID: String?
    private var sent = Set<RolloutMilestone>()
    /// Why the rollout paused, as its `paused` event said (after a healthy canary, or an
    /// inconclusive canary analysis).
    private var pausedBecause: String?

    public init(identity: RolloutIdentity) { self.identity = identity }

    /// The notification `event` makes, if any.
    public mutating func observe(_ event: RolloutEvent) -> RolloutNotification? {
        rolloutID = event.rolloutID
        if let host = event.host, let phase = event.phase { phases[host] = phase }
        switch event.type {
        case .started:
            return once(.started, .info, time: event.time, message: event.message)
        case .halted:
            let reason = event.message.hasPrefix("halted: ") ? String(event.message.dropFirst("halted: ".count)) : event.message
            let lockLost = reason.contains("lock")
            let severity: NotificationSeverity = lockLost || !attentionNow.isEmpty ? .critical : .warning
            guard var notification = once(.halted, severity, time: event.time, message: event.message) else { return nil }
            notification.haltReason = reason
            return notification
        case .paused:
            pausedBecause = event.message
            return nil
        case .host, .wave, .revert, .finished, .analysis:
            // `paused` and `finished` are sent from the summary, which has the outcome.
            return nil
        }
    }

    /// The notifications the summary makes: `paused`, or `reverted` (when hosts were
    /// reverted) then `finished`.
    public mutating func finish(_ summary: RolloutSummary) -> [RolloutNotification] {
        rolloutID = summary.rolloutID
        for host in summary.hosts { phases[host.host] = host.phase }
        var out: [RolloutNotification] = []
        func add(_ notification: RolloutNotification?) {
            guard var notification else { return }
            notification.outcome = summary.outcome.rawValue
            notification.haltReason = summary.haltReason
            notification.counts = Self.counts(summary)
            notification.attention = summary.attention
            out.append(notification)
        }
        if summary.outcome == .paused {
            add(once(.paused, .warning, time: summary.finishedAt, message: pausedBecause ?? "paused after a healthy canary; resume or abort it"))
            return out
        }
        let revertFailed = summary.hosts.filter { $0.phase == .revertFailed }.count
        if !summary.reverted.isEmpty || revertFailed > 0 {
            add(once(.reverted, revertFailed > 0 ? .critical : .warning, time: summary.finishedAt,
                     message: "reverted \(summary.reverted.count) host(s) to their previous release"
                        + (revertFailed > 0 ? "; \(revertFailed) revert(s) failed" : "")))
        }
        add(once(.finished, Self.severity(summary.outcome), time: summary.finishedAt, message: "finished: \(summary.outcome.rawValue)"))
        return out
    }

    public static func severity(_ outcome: RolloutOutcome) -> NotificationSeverity {
        switch outcome {
        case .succeeded: .info
        case .failed, .aborted, .paused: .warning
        case .needsAttention, .abandoned: .critical
        }
    }

    static func counts(_ summary: RolloutSummary) -> RolloutNotification.Counts {
        RolloutNotification.Counts(
            hosts: summary.hosts.count, succeeded: summary.succeeded.count, failed: summary.failed.count,
            reverted: summary.reverted.count, unreachable: summary.unreachable.count, skipped: summary.skipped.count)
    }

    private var attentionNow: [String] {
        phases.filter { [.rollbackFailed, .revertFailed, .unreachable].contains($0.value) }.map(\.key).sorted()
    }

    private var countsNow: RolloutNotification.Counts {
        let values = phases.values
        func count(_ match: (HostPhase) -> Bool) -> Int { values.filter(match).count }
        return RolloutNotification.Counts(
            hosts: max(identity.hosts, phases.count), succeeded: count { $0 == .succeeded },
            failed: count { [.failed, .rolledBack, .rollbackFailed, .revertFailed].contains($0) },
            reverted: count { $0 == .reverted }, unreachable: count { $0 == .unreachable }, skipped: count { $0 == .skipped })
    }

    /// A notification for `milestone` unless one was made already.
    private mutating func once(_ milestone: RolloutMilestone, _ severity: NotificationSeverity, time: Date, message: String) -> RolloutNotification? {
        guard sent.insert(milestone).inserted else { return nil }
        let id = rolloutID ?? "?"
        return RolloutNotification(
            event: milestone, severity: severity, time: time, rolloutID: id, app: identity.app, release: identity.release,
            serial: identity.serial, environment: identity.environment, actor: identity.actor, outcome: nil, haltReason: nil,
            counts: countsNow, attention: attentionNow, message: message, hint: "baton history show \(id)")
    }
}
