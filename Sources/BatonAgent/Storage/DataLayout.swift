/// Where everything lives under the data directory (docs/design.md §5):
/// ```
/// apps/<app>/releases/<release>/   complete, verified, never modified after the switch
/// apps/<app>/current -> releases/<release>
/// apps/<app>/.staging/<deployment-id>/
/// artifacts/sha256/<digest>        content-addressed cache (artifacts/tmp: uploads in flight)
/// state/apps/<app>.json            per-app state
/// state/approved/<app>/<release>.json    the manifest each held release was approved with
///                                        (payload, signers, threshold): `ApprovedRelease`
/// state/manifests/<app>/<release>.json   agents before 0.2: the last payload a release ran
///                                        with (read once, to carry approvals over)
/// state/deployments/<id>.json      deployment records
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
    public var auditLog: String { "\(root)/state/audit.log" }
    public var auditHead: String { "\(root)/state/audit.head" }
    public var lockFile: String { "\(root)/state/agent.lock" }
    public var hookScratchDirectory: String { "\(root)/state/hook-output" }

    /// Creates the directory skeleton.
    func create() throws(AgentError) {
        for dir in [appsDirectory, artifactsDirectory, artifactsTemporaryDirectory, appStateDirectory,
                    deploymentsDirectory, hookScratchDirectory] {
            try DurableFiles.makeDirectory(dir, mode: 0o755)
        }
    }
}
