import Foundation

/// One milestone of one rollout, as the generic webhook body (README: notifications;
/// Protocol/notification.schema.json). The Slack body is made from the same value.
public struct RolloutNotification: Codable, Sendable, Equatable {
    /// Host counts at the milestone, so a receiver need not keep state.
    public struct Counts: Codable, Sendable, Equatable {
        public var hosts: Int
        public var succeeded: Int
        public var failed: Int
        public var reverted: Int
        public var unreachable: Int
        public var skipped: Int

        public init(hosts: Int, succeeded: Int = 0, failed: Int = 0, reverted: Int = 0, unreachable: Int = 0, skipped: Int = 0) {
            self.hosts = hosts
            self.succeeded = succeeded
            self.failed = failed
            self.reverted = reverted
            self.unreachable = unreachable
            self.skipped = skipped
        }
    }

    /// `baton.rollout.v1`: changes only with a new name.
    public var schema = "baton.rollout.v1"
    public var event: RolloutMilestone
    public var severity: NotificationSeverity
    public var time: Date
    public var rolloutID: String
    public var app: String
    public var release: String
    public var serial: UInt64
    public var environment: String
    /// `user@host` of the controller that ran it.
    public var actor: String
    /// For `finished` (and `paused`): the rollout's outcome as the summary names it.
    public var outcome: String?
    public var haltReason: String?
    public var counts: Counts
    /// Hosts a person should look at (revert failed, rollback failed, unreachable).
    public var attention: [String]
    /// One line for people, also the Slack `text`.
    public var message: String
    /// Where the whole story is: `baton history show <id>`.
    public var hint: String

    public init(event: RolloutMilestone, severity: NotificationSeverity, time: Date, rolloutID: String, app: String, release: String,
                serial: UInt64, environment: String, actor: String, outcome: String?, haltReason: String?, counts: Counts,
                attention: [String], message: String, hint: String) {
        self.event = event
        self.severity = severity
        self.time = time
        self.rolloutID = rolloutID
        self.app = app
        self.release = release
        self.serial = serial
        self.environment = environment
        self.actor = actor
        self.outcome = outcome
        self.haltReason = haltReason
        self.counts = counts
        self.attention = attention
        self.message = message
        self.hint = hint
    }
}

/// Who ran what: the parts of a notification known before the first event.
public struct RolloutIdentity: Sendable, Equatable {
    public var app: String
    public var release: String
    public var serial: UInt64
    public var environment: String
    public var actor: String
    public var hosts: Int

    public init(app: String, release: String, serial: UInt64, environment: String, actor: String, hosts: Int) {
        self.app = app
        self.release = release
        self.serial = serial
        self.environment = environment
        self.actor = actor
        self.hosts = hosts
    }
}
