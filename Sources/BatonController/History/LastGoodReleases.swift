/// The release of each app's last successful rollout per environment, read once from the
/// history: what `baton status` calls the desired release when it looks for drift.
public struct LastGoodReleases: Sendable {
    let releases: [String: String]

    public init(history: any HistoryStore, limit: Int = 10_000) {
        var releases: [String: String] = [:]
        // Newest first: the first succeeded rollout per app and environment wins.
        // A drill's legs move a few hosts and back: never what the environment should run,
        // so a host a drill left behind shows as drifted.
        for rollout in (try? history.rollouts(app: nil, limit: limit)) ?? [] where rollout.outcome == .succeeded && rollout.kind != .drill {
            let key = "\(rollout.app)/\(rollout.environment)"
            if releases[key] == nil { releases[key] = rollout.release }
        }
        self.releases = releases
    }

    public func release(app: String, environment: String) -> String? { releases["\(app)/\(environment)"] }
}
