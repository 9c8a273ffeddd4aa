import BatonProtocol
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What the agent keeps about one app, written durably at every change.
///
/// `releases` is the one list of what the host holds: a release is on it exactly while
/// its directory is on disk, and it can be returned to (under `rollbackThreshold`) only
/// while it also succeeded here and its approved manifest is stored (`StateStore`).
/// Retention prunes the three together.
struct AppState: Codable, Sendable, Equatable {
    var app: String
    /// What `current` names, as last recorded (the symlink itself is the truth; they are
    /// brought back in line at start).
    var current: String?
    /// The release live before `current`, from `liveHistory`.
    var previous: String?
    var lastSerial: UInt64?
    var lastPayloadDigest: String?
    var lastDeploymentID: String?
    var activeDeploymentID: String?
    /// Releases on disk in the order they were installed (oldest first; timestamps have
    /// whole seconds, so the order is kept by position), with the artifact each came from.
    var releases: [InstalledRelease]
    /// The releases that were live, oldest first, at most `liveHistoryLimit`: one entry
    /// each time a deployment succeeded with a release other than the one live before.
    var liveHistory: [LiveRelease]
    var updatedAt: Date?

    /// Above `keep`'s maximum (100), so the history can always order every kept release.
    static let liveHistoryLimit = 128

    struct InstalledRelease: Codable, Sendable, Equatable {
        var name: String
        var artifactSHA256: String
        var installedAt: Date
        /// When a deployment of it first succeeded here; nil while it never did.
        var succeededAt: Date?
    }

    init(app: String) {
        self.app = app
        releases = []
        liveHistory = []
    }

    var succeededReleases: [String] { releases.filter { $0.succeededAt != nil }.map(\.name) }

    func installed(_ release: String) -> InstalledRelease? { releases.first { $0.name == release } }

    /// The release live before `current`: the entry before the newest one naming it.
    func previousLive(current: String?) -> String? {
        guard let current, let last = liveHistory.lastIndex(where: { $0.release == current }) else {
            return nil
        }
        return liveHistory[..<last].last { $0.release != current }?.release
    }

    /// Records that `release` became live, unless it already was the live one.
    mutating func recordLive(_ release: String, at time: Date, deploymentID: String?) {
        if liveHistory.last?.release == release { return }
        liveHistory.append(LiveRelease(release: release, since: time, deploymentID: deploymentID))
        while liveHistory.count > Self.liveHistoryLimit {
            // Forget an old visit of a release that was live again later before the only
            // visit of another: retention orders releases by their latest visit.
            let names = liveHistory.map(\.release)
            let repeated = names.indices.first { names[($0 + 1)...].contains(names[$0]) }
            liveHistory.remove(at: repeated ?? 0)
        }
    }

    /// Releases newest live first, each once.
    var recentlyLive: [String] {
        var seen = Set<String>()
        return liveHistory.reversed().map(\.release).filter { seen.insert($0).inserted }
    }

    // State written by agents before the live history kept `succeededReleases` (a list)
    // beside `releases`; it is read once and folded into `releases`.
    private enum CodingKeys: String, CodingKey {
        case app, current, previous, lastSerial, lastPayloadDigest, lastDeploymentID, activeDeploymentID, releases,
            liveHistory, updatedAt, succeededReleases
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        app = try c.decode(String.self, forKey: .app)
        current = try c.decodeIfPresent(String.self, forKey: .current)
        previous = try c.decodeIfPresent(String.self, forKey: .previous)
        lastSerial = try c.decodeIfPresent(UInt64.self, forKey: .lastSerial)
        lastPayloadDigest = try c.decodeIfPresent(String.self, forKey: .lastPayloadDigest)
        lastDeploymentID = try c.decodeIfPresent(String.self, forKey: .lastDeploymentID)
        activeDeploymentID = try c.decodeIfPresent(String.self, forKey: .activeDeploymentID)
        releases = try c.decode([InstalledRelease].self, forKey: .releases)
        updatedAt = try c.decodeIfPresent(Date.self, forKey: .updatedAt)
        if let history = try c.decodeIfPresent([LiveRelease].self, forKey: .liveHistory) {
            liveHistory = history
        } else {
            // Before the live history: install order of the releases that succeeded, then
            // what `current` named, is the best account of what was live.
            let succeeded = Set(try c.decodeIfPresent([String].self, forKey: .succeededReleases) ?? [])
            for index in releases.indices where succeeded.contains(releases[index].name) {
                releases[index].succeededAt = releases[index].succeededAt ?? releases[index].installedAt
            }
            liveHistory = []
            for release in releases where release.succeededAt != nil && release.name != current {
                recordLive(release.name, at: release.installedAt, deploymentID: nil)
            }
            if let current, let since = installed(current)?.installedAt { recordLive(current, at: since, deploymentID: nil) }
        }
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(app, forKey: .app)
        try c.encodeIfPresent(current, forKey: .current)
        try c.encodeIfPresent(previous, forKey: .previous)
        try c.encodeIfPresent(lastSerial, forKey: .lastSerial)
        try c.encodeIfPresent(lastPayloadDigest, forKey: .lastPayloadDigest)
        try c.encodeIfPresent(lastDeploymentID, forKey: .lastDeploymentID)
        try c.encodeIfPresent(activeDeploymentID, forKey: .activeDeploymentID)
        try c.encode(releases, forKey: .releases)
        try c.encode(liveHistory, forKey: .liveHistory)
        try c.encodeIfPresent(updatedAt, forKey: .updatedAt)
    }
}
