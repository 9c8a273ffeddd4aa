import BatonProtocol
import Foundation

/// How long a rollout's lock lease lasts: `lease:` under `history:` in `baton.yaml`, or
/// `BATON_LOCK_LEASE` (which wins), default 60 s. A rollout renews at a third of it, so a
/// controller that was killed or paused frees its lock to another after at most one
/// lease; a short one speeds up takeovers (and tests) at the cost of more renewals.
public enum RolloutLease {
    public static let defaultSeconds: TimeInterval = 60
    /// Below this, renewals (a third of it) would come too close to the database's round trip.
    public static let minimumSeconds: TimeInterval = 1
    public static let maximumSeconds: TimeInterval = 3600

    /// Parses a duration like `20s` or `2m`, within the bounds.
    public static func parse(_ text: String, what: String) throws(ConfigurationError) -> TimeInterval {
        guard let duration = BatonDuration(parsing: text), duration.seconds >= minimumSeconds, duration.seconds <= maximumSeconds else {
            throw ConfigurationError(.invalidValue, "\(what) '\(text)' is not a duration from 1s to 1h (like 20s or 2m)")
        }
        return duration.seconds
    }

    /// The `lease:` of a `history:` mapping, if any.
    static func parse(history node: YAMLValue, file: String) throws(ConfigurationError) -> TimeInterval? {
        guard let entry = try? node.mapping(), let lease = entry["lease"] else { return nil }
        do { return try parse(try lease.string(), what: "history.lease") } catch {
            throw ConfigurationError(error.code, error.message, file: file)
        }
    }
}
