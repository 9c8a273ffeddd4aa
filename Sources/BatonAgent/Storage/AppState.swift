import BatonProtocol
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What the agent keeps about one app, written durably at every change.
struct AppState: Codable, Sendable, Equatable {
    var app: String
    /// What `current` names, as last recorded (the symlink itself is the truth; they are
    /// brought back in line at start).
    var current: String?
    var previous: String?
    var lastSerial: UInt64?
    var lastPayloadDigest: String?
    var lastDeploymentID: String?
    var activeDeploymentID: String?
    /// Releases on disk in the order they were installed (oldest first; timestamps have
    /// whole seconds, so the order is kept by position), with the artifact each came from.
    var releases: [InstalledRelease]
    var succeededReleases: [String]
    /// The artifact each succeeded release ran with: a return to a release counts as a
    /// rollback (fewer signatures) only with the same bytes.
    var succeededArtifacts: [String: String]?
    var updatedAt: Date?

    struct InstalledRelease: Codable, Sendable, Equatable {
        var name: String
        var artifactSHA256: String
        var installedAt: Date
    }

    init(app: String) {
        self.app = app
        releases = []
        succeededReleases = []
    }

    var history: AppHistory {
        AppHistory(
            lastSerial: lastSerial, lastPayloadDigest: lastPayloadDigest, succeededReleases: Set(succeededReleases),
            succeededArtifacts: succeededArtifacts ?? [:])
    }

    func installed(_ release: String) -> InstalledRelease? { releases.first { $0.name == release } }
}
