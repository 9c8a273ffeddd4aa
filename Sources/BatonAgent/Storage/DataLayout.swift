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

/// Where everything lives under the data directory (docs/design.md §5):
/// ```
/// apps/<app>/releases/<release>/   complete, verified, never modified after the switch
/// apps/<app>/current -> releases/<release>
/// apps/<app>/.staging/<deployment-id>/
/// apps/<app>/.trash/<release>.<random>/   dropped trees, removed after the deployment's end
/// artifacts/sha256/<digest>        content-addressed cache (artifacts/tmp: uploads in flight)
/// state/apps/<app>.json            per-app state
/// state/approved/<app>/<release>.json    the manifest each held release was approved with
///                                        (payload, signers, threshold): `ApprovedRelease`
/// state/manifests/<app>/<release>.json   agents before 0.2: the last payload a release ran
///                                        with (read once, to carry approvals over)
/// state/deployments/<id>.json      deployment records (the summary, rewritten on the
///                                  phase changes crash recovery reads)
/// state/deployments/<id>.events    each record's changes since, one JSON line each
/// state/audit.log, state/audit.head
/// ```
/// Names used in paths are checked against `Name.pattern` before they get here.
public struct DataLayout: Sendable {
    public let root: String

    public init(root: String) { self.root = root }

    public var appsDirectory: String { "\(root)/apps" }
    public func appDirectory(_ app: String) -> String { "\(root)/apps/\(app)" }
    public func releasesDirectory(_ app: String) -> String { "\(appDirectory(app))/releases" }
    public func releaseDirectory(_ app: String, _ release: String) -> String { "\(releasesDirectory(app))/\(release)" }
    public func currentLink(_ app: String) -> String { "\(appDirectory(app))/current" }
    public func stagingRoot(_ app: String) -> String { "\(appDirectory(app))/.staging" }
    public func stagingDirectory(_ app: String, _ deploymentID: String) -> String { "\(stagingRoot(app))/\(deploymentID)" }
    /// Where release trees the app no longer keeps wait for their removal (`ReleaseTrash`).
    public func trashRoot(_ app: String) -> String { "\(appDirectory(app))/.trash" }

    public var artifactsDirectory: String { "\(root)/artifacts/sha256" }
    public var artifactsTemporaryDirectory: String { "\(root)/artifacts/tmp" }
    public func artifact(_ digest: String) -> String { "\(artifactsDirectory)/\(digest)" }

    public var stateDirectory: String { "\(root)/state" }
    public var appStateDirectory: String { "\(root)/state/apps" }
    public func appState(_ app: String) -> String { "\(appStateDirectory)/\(app).json" }
    public func manifestsDirectory(_ app: String) -> String { "\(root)/state/manifests/\(app)" }
    public func manifest(_ app: String, _ release: String) -> String { "\(manifestsDirectory(app))/\(release).json" }
    public func approvedDirectory(_ app: String) -> String { "\(root)/state/approved/\(app)" }
    public func approved(_ app: String, _ release: String) -> String { "\(approvedDirectory(app))/\(release).json" }
    public var deploymentsDirectory: String { "\(root)/state/deployments" }
    public func deployment(_ id: String) -> String { "\(deploymentsDirectory)/\(id).json" }
    /// The append-only event log of a deployment: the changes to its record since the
    /// summary in `deployment(id)` was written.
    public func deploymentEvents(_ id: String) -> String { "\(deploymentsDirectory)/\(id).events" }
    public var auditLog: String { "\(root)/state/audit.log" }
    public var auditHead: String { "\(root)/state/audit.head" }
    public var lockFile: String { "\(root)/state/agent.lock" }
    public var hookScratchDirectory: String { "\(root)/state/hook-output" }

    /// Creates the directory skeleton and tightens what exists: the data directory and
    /// everything under `state/` and `artifacts/` are 0700, so records (with hook output),
    /// approved manifests, artifacts and the audit log are the agent's alone whatever the
    /// umask and whoever made the directories. `apps/` keeps 0755 below that: release
    /// trees are the app's files, with the modes their archive gave them, and the data
    /// directory being 0700 is what keeps other users out of them.
    /// Returns each directory that was looser than it should be, with its old mode.
    func create() throws(AgentError) -> [(path: String, mode: mode_t)] {
        try DurableFiles.makeDirectory(root)
        try DurableFiles.makeDirectory(appsDirectory, mode: DataLayout.releaseDirectoryMode)
        for dir in [artifactsDirectory, artifactsTemporaryDirectory, appStateDirectory, deploymentsDirectory,
                    hookScratchDirectory] {
            try DurableFiles.makeDirectory(dir)
        }
        var tightened: [(path: String, mode: mode_t)] = []
        var privateDirectories = [root, stateDirectory, "\(root)/artifacts", artifactsDirectory, artifactsTemporaryDirectory,
                                  appStateDirectory, deploymentsDirectory, hookScratchDirectory, "\(root)/state/approved",
                                  "\(root)/state/manifests"]
        for parent in ["\(root)/state/approved", "\(root)/state/manifests"] {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? []
            privateDirectories += names.sorted().map { "\(parent)/\($0)" }
        }
        for dir in privateDirectories {
            if let old = try DurableFiles.tightenDirectory(dir) { tightened.append((dir, old)) }
        }
        return tightened
    }

    /// Mode of `apps/`, each app's directory, `releases/` and the staging directory a
    /// release is unpacked into (which becomes the release directory): readable, so a
    /// service running as its own user can be given its release by a bind mount or a
    /// hook that copies it; never group- or other-writable.
    static let releaseDirectoryMode: mode_t = 0o755
}
