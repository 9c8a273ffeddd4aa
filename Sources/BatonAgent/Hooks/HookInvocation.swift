#if canImport(Glibc)
import Glibc
#endif
import BatonProtocol

/// One run of a hook (or of a `command` health check): what to execute, where, with
/// which environment, and for how long at most.
public struct HookInvocation: Sendable {
    /// `prepare`, `activate`, `rollback-activate`, or `health`.
    public var hook: String
    /// The release the hook belongs to, for the record and the logs.
    public var release: String
    public var command: Command
    /// The release directory; relative executables (`./bin/restart`) resolve against it.
    public var workingDirectory: String
    /// The `BATON_*` variables. They are merged over `HookInvocation.baseEnvironment`:
    /// a hook never sees the rest of the agent's environment.
    public var environment: [String: String]
    /// When it runs out, the hook's whole process group is terminated, then killed.
    public var timeout: BatonDuration
    /// Bytes kept from the end of each of stdout and stderr.
    public var outputLimit: Int
    /// How long the group gets between SIGTERM and SIGKILL on timeout. Nil: the runner's.
    public var killGrace: Duration?

    public init(
        hook: String, release: String, command: Command, workingDirectory: String,
        environment: [String: String], timeout: BatonDuration = Hook.defaultTimeout,
        outputLimit: Int = 64 << 10, killGrace: Duration? = nil
    ) {
        self.hook = hook
        self.release = release
        self.command = command
        self.workingDirectory = workingDirectory
        self.environment = environment
        self.timeout = timeout
        self.outputLimit = outputLimit
        self.killGrace = killGrace
    }

    /// The hook name of `command` health checks, which run through the hook runner.
    public static let healthHook = "health"

    /// The PATH a hook gets when the agent itself has none.
    public static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// The minimal environment every hook starts from: the agent's PATH and HOME (or
    /// sane defaults) and a UTF-8 locale. Nothing else of the agent leaks into hooks.
    public static var baseEnvironment: [String: String] {
        [
            "PATH": Self.agentVariable("PATH") ?? Self.defaultPath,
            "HOME": Self.agentVariable("HOME") ?? "/",
            "LANG": "C.UTF-8",
        ]
    }

    /// The environment the process is given: `environment` over `baseEnvironment`.
    public var effectiveEnvironment: [String: String] {
        Self.baseEnvironment.merging(environment) { _, hook in hook }
    }

    private static func agentVariable(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        let text = String(cString: value)
        return text.isEmpty ? nil : text
    }
}
