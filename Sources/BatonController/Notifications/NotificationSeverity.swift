/// How loud a rollout notification is. A hook sends what is at or above its
/// `minSeverity`; the rules that assign one are in `RolloutMilestones`.
public enum NotificationSeverity: String, Codable, Sendable, CaseIterable, Comparable {
    case info, warning, critical

    private var rank: Int {
        switch self {
        case .info: 0
        case .warning: 1
        case .critical: 2
        }
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rank < rhs.rank }
}

/// The moments of a rollout worth telling people about: one notification each, never
/// one per host event.
public enum RolloutMilestone: String, Codable, Sendable, CaseIterable {
    case started, paused, halted, reverted, finished
}
