import Synchronization

/// A progress renderer that shows the rollout through `base`, as before, and hands its
/// milestones to a notifier: the session needs no notion of webhooks. The base renderer
/// sees every event first; queueing a notification never waits on the network.
public final class NotifyingRenderer: ProgressRenderer {
    let base: any ProgressRenderer
    public let notifier: WebhookNotifier
    private let milestones: Mutex<RolloutMilestones>

    public init(base: any ProgressRenderer, notifier: WebhookNotifier, identity: RolloutIdentity) {
        self.base = base
        self.notifier = notifier
        self.milestones = Mutex(RolloutMilestones(identity: identity))
    }

    public func handle(_ event: RolloutEvent) {
        base.handle(event)
        if let notification = milestones.withLock({ $0.observe(event) }) { notifier.send(notification) }
    }

    public func finish(_ summary: RolloutSummary) {
        base.finish(summary)
        notifyFinished(summary)
    }

    /// The summary's milestones without showing it: for a rollout stopped at once, whose
    /// summary the session does not render.
    public func notifyFinished(_ summary: RolloutSummary) {
        for notification in milestones.withLock({ $0.finish(summary) }) { notifier.send(notification) }
    }
}
