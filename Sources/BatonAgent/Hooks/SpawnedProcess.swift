#if canImport(Glibc)
import Glibc
#endif

/// A child started with `posix_spawn` as the leader of a new process group, so that it
/// and everything it starts (unless they leave the group on purpose) can be signalled
/// together. Not Foundation's `Process`: it can neither make a process group nor leave
/// the child's descriptors alone, and it reaps children behind our back.
struct SpawnedProcess: Sendable {
    let pid: pid_t

    /// How the main process ended.
    enum Termination: Sendable, Equatable {
        case exited(Int32)
        case signalled(Int32)
        /// Someone else reaped it (the agent's SIGCHLD disposition was changed to SIG_IGN).
        case unknown
    }

    /// What `posix_spawn` needs, prepared by the caller.
    struct Request {
        var arguments: [String]
        var environment: [String: String]
        var workingDirectory: String
        var stdout: Int32
        var stderr: Int32
    }

    /// Why a process could not be started; the hook reports it as exit status 127, the
    /// shell's "command not found".
    struct SpawnFailure: Error, CustomStringConvertible {
        let description: String
    }

    /// Starts the process. argv[0] without a `/` is looked up in PATH (`posix_spawnp`,
    /// which searches the agent's PATH: the one hooks inherit unless their environment
    /// sets another); with a `/` it is a path, relative ones resolved against the working
    /// directory.
    static func spawn(_ request: Request) -> Result<SpawnedProcess, SpawnFailure> {
        guard let program = request.arguments.first, !program.isEmpty else {
            return .failure(SpawnFailure(description: "empty command"))
        }
        var info = stat()
        guard stat(request.workingDirectory, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
            return .failure(SpawnFailure(description: "working directory \(request.workingDirectory) is not a directory"))
        }
        let searchPath = !program.contains("/")
        let executable = searchPath || program.hasPrefix("/") ? program : "\(request.workingDirectory)/\(program)"

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Its own process group (pgid = its pid), a clean signal mask, and default
        // dispositions for the signals the agent's runtime may ignore or handle: ignored
        // signals survive exec, and a service started with SIGPIPE ignored misbehaves.
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        posix_spawnattr_setpgroup(&attributes, 0)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, request.stdout, 1)
        posix_spawn_file_actions_adddup2(&actions, request.stderr, 2)
        // Nothing else of the agent's is inherited, even a descriptor someone opened
        // without O_CLOEXEC: a service started by a hook must never hold the agent's
        // listening socket or data-directory lock.
        _ = GNUSpawnActions.addCloseFrom?(&actions, 3)
        guard let addChdir = GNUSpawnActions.addChdir else {
            return .failure(SpawnFailure(description: "this C library cannot spawn in a directory (glibc 2.29 or later is needed)"))
        }
        _ = addChdir(&actions, request.workingDirectory)

        let argv = request.arguments
        let envp = request.environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        var pid: pid_t = 0
        let result = withCStringArray(argv) { argvPointer in
            withCStringArray(envp) { envPointer in
                searchPath
                    ? posix_spawnp(&pid, executable, &actions, &attributes, argvPointer, envPointer)
                    : posix_spawn(&pid, executable, &actions, &attributes, argvPointer, envPointer)
            }
        }
        guard result == 0 else {
            // glibc reports exec failures (ENOENT, EACCES, ENOEXEC) here and has already
            // reaped the short-lived child.
            return .failure(SpawnFailure(description: "cannot run \(program): \(String(cString: strerror(result)))"))
        }
        return .success(SpawnedProcess(pid: pid))
    }

    /// True once the main process has ended. It is left a zombie (WNOWAIT) until
    /// `reap()`, which keeps its pid, and so its process group id, from being reused
    /// while we may still signal the group.
    func hasExited() -> Bool {
        while true {
            var info = siginfo_t()
            if waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 {
                return info._sifields._sigchld.si_pid != 0
            }
            if errno == EINTR { continue }
            return true  // ECHILD: nothing left to wait for.
        }
    }

    /// Collects the exit status. Call only after `hasExited()` returned true.
    func reap() -> Termination {
        var status: Int32 = 0
        while true {
            if waitpid(pid, &status, 0) == pid { break }
            if errno == EINTR { continue }
            return .unknown
        }
        // WIFEXITED / WEXITSTATUS / WTERMSIG are macros Swift does not import.
        let signal = status & 0x7f
        return signal == 0 ? .exited((status >> 8) & 0xff) : .signalled(signal)
    }

    /// Sends a signal to every process of the group.
    func signalGroup(_ signal: Int32) {
        kill(-pid, signal)
    }
}

/// Calls `body` with a NULL-terminated array of C strings, as `execve` wants them.
private func withCStringArray<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    let pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) } + [nil]
    defer { for pointer in pointers { free(pointer) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}

/// The GNU extensions of posix_spawn. Swift's Glibc module is imported without
/// `_GNU_SOURCE`, so they are looked up at run time, which also copes with an older glibc:
/// `addchdir_np` (glibc 2.29) is required, `addclosefrom_np` (2.34) is used when present.
private enum GNUSpawnActions {
    typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, UnsafePointer<CChar>?) -> Int32
    typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32

    static let addChdir: AddChdir? = symbol("posix_spawn_file_actions_addchdir_np")
    static let addCloseFrom: AddCloseFrom? = symbol("posix_spawn_file_actions_addclosefrom_np")

    private static func symbol<Function>(_ name: String) -> Function? {
        guard let process = dlopen(nil, RTLD_NOW), let address = dlsym(process, name) else { return nil }
        return unsafeBitCast(address, to: Function.self)
    }
}
