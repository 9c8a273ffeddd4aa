import Foundation

/// A PostgreSQL server of the test process's own: `initdb` into a temporary directory,
/// `postgres` on a free loopback port with its socket in that directory, stopped and
/// removed when the test process exits. One per test process (started by the first test
/// that asks), one fresh database per test (`createDatabase`), so no test depends on a
/// server left running and the suite does not pay for a server per test.
///
/// `initdb` and `postgres` refuse to run as root: as root (CI, this workplace) they run
/// as the `postgres` user that Debian's package creates, through `setpriv`.
public final class PostgresServer: @unchecked Sendable {
    public let port: Int
    /// The superuser the cluster was made with; trusted on loopback, no password.
    public let user = "baton"
    private let directory: TemporaryDirectory
    private let bin: String
    private let process: Process

    private static let lock = NSLock()
    nonisolated(unsafe) private static var started: Result<PostgresServer, TestSupportError>?
    nonisolated(unsafe) private static var databases = 0

    /// The process's server, started on first use. A failure is kept: every test that needs
    /// the server fails with the same message instead of trying again.
    public static func shared() throws -> PostgresServer {
        lock.lock()
        defer { lock.unlock() }
        if let started { return try started.get() }
        let result: Result<PostgresServer, TestSupportError>
        do { result = .success(try PostgresServer()) } catch let error as TestSupportError {
            result = .failure(error)
        } catch {
            result = .failure(TestSupportError("\(error)"))
        }
        started = result
        if case .success = result { atexit { PostgresServer.stopShared() } }
        return try result.get()
    }

    /// A new, empty database on the shared server; its `postgres://` URL.
    public static func createDatabase() throws -> String {
        let server = try shared()
        let name = lock.withLock { () -> String in
            databases += 1
            return "baton_test_\(getpid())_\(databases)"
        }
        try server.psql("CREATE DATABASE \(name)")
        return server.url(database: name)
    }

    public func url(database: String) -> String { "postgres://\(user)@127.0.0.1:\(port)/\(database)" }

    /// The newest `/usr/lib/postgresql/<version>/bin` (Debian's layout), or the directory of
    /// `initdb` on the PATH.
    static func binaries() throws -> String {
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [])
            .compactMap(Int.init).sorted()
        for version in versions.reversed() where FileManager.default.isExecutableFile(atPath: "\(root)/\(version)/bin/initdb") {
            return "\(root)/\(version)/bin"
        }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
        where FileManager.default.isExecutableFile(atPath: "\(dir)/initdb") {
            return String(dir)
        }
        throw TestSupportError(
            "PostgreSQL is not installed (no initdb in /usr/lib/postgresql/*/bin or on the PATH): install Debian's `postgresql` package (.ci/run does)")
    }

    private init() throws {
        bin = try Self.binaries()
        directory = try TemporaryDirectory(prefix: "baton-postgres")
        let data = directory.child("data")
        let asRoot = getuid() == 0
        if asRoot {
            // The server's user must own its data directory and reach the socket directory.
            let chown = try ProcessRunner.run("/bin/chown", ["-R", "postgres:postgres", directory.path])
            guard chown.status == 0 else {
                throw TestSupportError("chown postgres \(directory.path) failed (is there a `postgres` user?): \(chown.stderr)")
            }
        }
        let command = Self.unprivileged(asRoot) + ["\(bin)/initdb"]
        let initdb = try ProcessRunner.run(
            command[0], Array(command.dropFirst())
                + ["-D", data, "-U", user, "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions"],
            environment: ["LC_ALL": "C"])
        guard initdb.status == 0 else {
            directory.remove()
            throw TestSupportError("initdb failed: \(initdb.stderr)\(initdb.stdout)")
        }
        var lastError = ""
        for _ in 0..<5 {
            let port = Self.freePort()
            let process = Process()
            // Under a watchdog shell: when the test process dies without exiting (a crash, a
            // kill), the server is stopped and its directory removed all the same.
            process.executableURL = URL(fileURLWithPath: "/bin/bash")
            process.arguments = ["-c", Self.watchdog, "watchdog", "\(getpid())", directory.path]
                + Self.unprivileged(asRoot) + ["\(bin)/postgres"] + [
                // No durability: the data lives as long as the test process.
                "-D", data, "-p", "\(port)", "-k", directory.path, "-c", "listen_addresses=127.0.0.1",
                "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200",
            ]
            let log = directory.child("server-\(port).log")
            FileManager.default.createFile(atPath: log, contents: nil)
            if asRoot { _ = try? ProcessRunner.run("/bin/chown", ["postgres:postgres", log]) }
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            process.standardOutput = handle
            process.standardError = handle
            process.standardInput = FileHandle.nullDevice
            try process.run()
            if Self.waitUntilReady(bin: bin, port: port, process: process) {
                self.port = port
                self.process = process
                return
            }
            lastError = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if process.isRunning {
                FileManager.default.createFile(atPath: directory.child("stop"), contents: nil)
                process.waitUntilExit()
                break
            }
        }
        directory.remove()
        throw TestSupportError("postgres did not start: \(lastError)")
    }

    private static func unprivileged(_ asRoot: Bool) -> [String] {
        asRoot ? ["/usr/bin/setpriv", "--reuid", "postgres", "--regid", "postgres", "--init-groups"] : []
    }

    /// `bash -c WATCHDOG watchdog TEST_PID DIRECTORY SERVER_COMMAND...`: runs the server,
    /// stops it (SIGINT, the fast shutdown) and removes the directory when `DIRECTORY/stop`
    /// appears or the test process is gone (a crash, a kill). A server that exits by itself
    /// (it could not start) leaves the directory for the next try. Files and polling, not
    /// signals: the test process's threads block signals, and children inherit that mask.
    private static let watchdog = """
        test_pid=$1; dir=$2; shift 2
        "$@" & server=$!
        while kill -0 "$test_pid" 2>/dev/null && [ ! -e "$dir/stop" ] && [ -n "$(jobs -rp)" ]; do sleep 0.2; done
        kill -INT "$server" 2>/dev/null; wait "$server"
        [ -e "$dir/stop" ] || ! kill -0 "$test_pid" 2>/dev/null && rm -rf "$dir"
        """

    private static func waitUntilReady(bin: String, port: Int, process: Process) -> Bool {
        for _ in 0..<300 {
            guard process.isRunning else { return false }
            if let ready = try? ProcessRunner.run("\(bin)/pg_isready", ["-q", "-h", "127.0.0.1", "-p", "\(port)"]), ready.status == 0 {
                return true
            }
            usleep(50_000)
        }
        return false
    }

    /// A port the kernel just handed out and took back; `postgres` retries on a clash.
    private static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Runs one SQL statement as the superuser against the `postgres` database.
    public func psql(_ sql: String) throws {
        let result = try ProcessRunner.run(
            "\(bin)/psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", "\(port)", "-U", user, "-d", "postgres", "-c", sql])
        guard result.status == 0 else { throw TestSupportError("psql \(sql) failed: \(result.stderr)") }
    }

    private static func stopShared() {
        lock.lock()
        defer { lock.unlock() }
        guard case .success(let server) = started else { return }
        started = nil
        // The watchdog stops the server and removes the directory. Polled, not
        // waitUntilExit: the test process is exiting.
        FileManager.default.createFile(atPath: server.directory.child("stop"), contents: nil)
        for _ in 0..<100 where server.process.isRunning {
            usleep(50_000)
        }
    }
}
