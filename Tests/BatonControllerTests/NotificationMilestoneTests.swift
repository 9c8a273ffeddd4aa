import BatonController
import BatonProtocol
import Foundation
import Testing

/// Which notifications a rollout's events make, and how loud each is.
@Suite("Notification milestones")
struct NotificationMilestoneTests {
    static let identity = RolloutIdentity(app: "web", release: "v2", serial: 2, environment: "staging", actor: "ci@build", hosts: 3)

    static func event(_ type: RolloutEvent.Kind, _ message: String = "") -> RolloutEvent {
        RolloutEvent(type: type, rolloutID: "r-1", message: message)
    }

    static func event(_ type: RolloutEvent.Kind, host: String, _ phase: HostPhase) -> RolloutEvent {
        RolloutEvent(type: type, rolloutID: "r-1", host: host, phase: phase, message: phase.rawValue)
    }

    static func summary(_ outcome: RolloutOutcome, _ phases: [String: HostPhase], haltReason: String? = nil) -> RolloutSummary {
        let hosts = phases.keys.sorted().map { id -> HostResult in
            var result = HostResult(host: id, phase: phases[id]!)
            result.needsAttention = [.revertFailed, .rollbackFailed, .unreachable].contains(phases[id]!)
            return result
        }
        return RolloutSummary(
            rolloutID: "r-1", app: "web", release: "v2", serial: 2, environment: "staging", strategy: "canary 1",
            outcome: outcome, halted: haltReason != nil, haltReason: haltReason, startedAt: Date(), finishedAt: Date(), hosts: hosts)
    }

    /// Every event of a rollout that deployed host-1 and host-2, failed on host-2, halted
    /// and reverted host-1; the notifications made, in order.
    static func failedAndReverted(revert: HostPhase = .reverted) -> [RolloutNotification] {
        var milestones = RolloutMilestones(identity: identity)
        var made: [RolloutNotification] = []
        let events = [
            event(.started, "rollout r-1: web v2"),
            event(.wave, "canary: host-1, host-2"),
            event(.host, host: "host-1", .uploading), event(.host, host: "host-1", .switching), event(.host, host: "host-1", .succeeded),
            event(.host, host: "host-2", .uploading), event(.host, host: "host-2", .checking), event(.host, host: "host-2", .rolledBack),
            event(.halted, "halted: the canary failed on host-2"),
            event(.revert, "reverting 1 host(s) to their previous release at once"),
            event(.host, host: "host-1", .reverting), event(.host, host: "host-1", revert),
            event(.finished, "rollout failed"),
        ]
        for event in events { if let notification = milestones.observe(event) { made.append(notification) } }
        let outcome: RolloutOutcome = revert == .reverted ? .failed : .needsAttention
        made += milestones.finish(summary(outcome, ["host-1": revert, "host-2": .rolledBack, "host-3": .skipped],
                                          haltReason: "the canary failed on host-2"))
        return made
    }

    @Test("a halted, reverted rollout: started, halted, reverted, finished; nothing per host event")
    func oneNotificationPerMilestone() {
        let made = Self.failedAndReverted()
        #expect(made.map(\.event) == [.started, .halted, .reverted, .finished])
        #expect(made.map(\.severity) == [.info, .warning, .warning, .warning])
        let halted = made[1]
        #expect(halted.haltReason == "the canary failed on host-2")
        #expect(halted.counts == RolloutNotification.Counts(hosts: 3, succeeded: 1, failed: 1))
        let finished = made[3]
        #expect(finished.outcome == "failed")
        #expect(finished.counts == RolloutNotification.Counts(hosts: 3, failed: 1, reverted: 1, skipped: 1))
        #expect(finished.hint == "baton history show r-1")
        #expect(finished.app == "web" && finished.release == "v2" && finished.environment == "staging" && finished.actor == "ci@build")
    }

    @Test("a failed revert makes reverted and finished critical, and names the host needing attention")
    func failedRevertIsCritical() {
        let made = Self.failedAndReverted(revert: .revertFailed)
        #expect(made.map(\.event) == [.started, .halted, .reverted, .finished])
        #expect(made.map(\.severity) == [.info, .warning, .critical, .critical])
        #expect(made[3].outcome == "needs_attention" && made[3].attention == ["host-1"])
    }

    @Test("finished: info when it succeeded, warning when failed or aborted, critical for needs_attention and abandoned")
    func finishedSeverity() {
        #expect(RolloutMilestones.severity(.succeeded) == .info)
        #expect(RolloutMilestones.severity(.failed) == .warning)
        #expect(RolloutMilestones.severity(.aborted) == .warning)
        #expect(RolloutMilestones.severity(.needsAttention) == .critical)
        #expect(RolloutMilestones.severity(.abandoned) == .critical)
        var milestones = RolloutMilestones(identity: Self.identity)
        _ = milestones.observe(Self.event(.started))
        let made = milestones.finish(Self.summary(.succeeded, ["host-1": .succeeded, "host-2": .succeeded, "host-3": .succeeded]))
        #expect(made.map(\.event) == [.finished] && made[0].severity == .info && made[0].counts.succeeded == 3)
    }

    @Test("a paused rollout sends paused (warning) and no finished: it has not finished")
    func pausedIsNotFinished() {
        var milestones = RolloutMilestones(identity: Self.identity)
        #expect(milestones.observe(Self.event(.paused, "paused after a healthy canary")) == nil)
        let made = milestones.finish(Self.summary(.paused, ["host-1": .succeeded, "host-2": .skipped, "host-3": .skipped]))
        #expect(made.map(\.event) == [.paused] && made[0].severity == .warning && made[0].outcome == "paused")
    }

    @Test("a halt with an unreachable host, or for a lost lock, is critical; a second halt is not sent again")
    func criticalHalts() {
        var milestones = RolloutMilestones(identity: Self.identity)
        _ = milestones.observe(Self.event(.host, host: "host-1", .unreachable))
        #expect(milestones.observe(Self.event(.halted, "halted: host-1 is unreachable"))?.severity == .critical)
        #expect(milestones.observe(Self.event(.halted, "halted: again")) == nil)
        var other = RolloutMilestones(identity: Self.identity)
        #expect(other.observe(Self.event(.halted, "halted: the rollout lock was broken or taken over"))?.severity == .critical)
    }

    @Test("a hook takes what is at or above its minimum severity, and only its events when it lists them")
    func hookFilters() throws {
        let made = Self.failedAndReverted(revert: .revertFailed)
        let url = try #require(URL(string: "https://hooks.example.com/x"))
        let all = NotificationHook(url: url)
        let loud = NotificationHook(url: url, minSeverity: .warning)
        let pager = NotificationHook(url: url, minSeverity: .critical)
        let ends = NotificationHook(url: url, events: [.finished])
        #expect(made.filter(all.accepts).map(\.event) == [.started, .halted, .reverted, .finished])
        #expect(made.filter(loud.accepts).map(\.event) == [.halted, .reverted, .finished])
        #expect(made.filter(pager.accepts).map(\.event) == [.reverted, .finished])
        #expect(made.filter(ends.accepts).map(\.event) == [.finished])
    }
}
