import Foundation

/// A Prometheus server of the test process's own: Debian's `/usr/bin/prometheus` on a
/// free loopback port, with its configuration and storage in a temporary directory,
/// scraping twice a second the targets the tests register (`addTarget`, through a
/// file-based discovery file it watches). One per test process, started by the first test
/// that asks and stopped when the process exits, as `PostgresServer`.
public final class PrometheusServer: @unchecked Sendable {
    public let port: Int
    private let directory: TemporaryDirectory
    private let process: Process

    /// `http://127.0.0.1:<port>`.
    public var url: String { "http://127.0.0.1:\(port)" }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var started: Result<PrometheusServer, TestSupportError>?
    nonisolated(unsafe) private static var targets = 0

    /// Where Debian's package puts it; `prometheus` on the PATH otherwise.
    static func binary() throws -> String {
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/prometheus") { return "/usr/bin/prometheus" }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
        where FileManager.default.isExecutableFile(atPath: "\(dir)/prometheus") {
            return "\(dir)/prometheus"
        }
        throw TestSupportError("Prometheus is not installed: install Debian's `prometheus` package (.ci/run does)")
    }

    /// The process's server, started on first use; a failure is kept, as `PostgresServer`.
    public static func shared() throws -> PrometheusServer {
        lock.lock()
        defer { lock.unlock() }
        if let started { return try started.get() }
        let result: Result<PrometheusServer, TestSupportError>
        do { result = .success(try PrometheusServer()) } catch let error as TestSupportError {
            result = .failure(error)
        } catch {
            result = .failure(TestSupportError("\(error)"))
        }
        started = result
        if case .success = result { atexit { PrometheusServer.stopShared() } }
        return try result.get()
    }

    private init() throws {
        let binary = try Self.binary()
        directory = try TemporaryDirectory(prefix: "baton-prometheus")
        try FileManager.default.createDirectory(atPath: directory.child("targets"), withIntermediateDirectories: true)
        let config = """
            global:
              scrape_interval: 500ms
              scrape_timeout: 400ms
              evaluation_interval: 1s
            scrape_configs:
              - job_name: baton-test
                file_sd_configs:
                  - files: ['\(directory.child("targets"))/*.json']
                    refresh_interval: 1s
            """
        try config.write(toFile: directory.child("prometheus.yml"), atomically: true, encoding: .utf8)
        var lastError = ""
        for _ in 0..<5 {
            let port = Self.freePort()
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/bash")
            process.arguments = ["-c", Self.watchdog, "watchdog", "\(getpid())", directory.path, binary,
                "--config.file=\(directory.child("prometheus.yml"))",
                "--storage.tsdb.path=\(directory.child("data"))",
                "--web.listen-address=127.0.0.1:\(port)",
                "--storage.tsdb.retention.time=1h",
                "--log.level=warn",
            ]
            let log = directory.child("server-\(port).log")
            FileManager.default.createFile(atPath: log, contents: nil)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            process.standardOutput = handle
            process.standardError = handle
            process.standardInput = FileHandle.nullDevice
            try process.run()
            if Self.waitUntilReady(port: port, process: process) {
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
        throw TestSupportError("prometheus did not start: \(lastError)")
    }

    /// As `PostgresServer`'s: stops the server (SIGTERM) and removes the directory when
    /// `DIRECTORY/stop` appears or the test process is gone.
    private static let watchdog = """
        test_pid=$1; dir=$2; shift 2
        "$@" & server=$!
        while kill -0 "$test_pid" 2>/dev/null && [ ! -e "$dir/stop" ] && [ -n "$(jobs -rp)" ]; do sleep 0.2; done
        kill -TERM "$server" 2>/dev/null; wait "$server"
        [ -e "$dir/stop" ] || ! kill -0 "$test_pid" 2>/dev/null && rm -rf "$dir"
        """

    private static func waitUntilReady(port: Int, process: Process) -> Bool {
        for _ in 0..<300 {
            guard process.isRunning else { return false }
            if let ready = try? ProcessRunner.run(
                "/usr/bin/curl", ["-sf", "-o", "/dev/null", "--max-time", "1", "http://127.0.0.1:\(port)/-/ready"]),
                ready.status == 0
            {
                return true
            }
            usleep(100_000)
        }
        return false
    }

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

    /// Has Prometheus scrape `127.0.0.1:port` every 500 ms with these target labels (e.g.
    /// `host`); returns a name for `removeTarget`. Discovery picks the file up within a
    /// second or two.
    public func addTarget(port: Int, labels: [String: String]) throws -> String {
        let name = Self.lock.withLock { () -> String in
            Self.targets += 1
            return "target-\(Self.targets)"
        }
        let group: [[String: Any]] = [["targets": ["127.0.0.1:\(port)"], "labels": labels]]
        let data = try JSONSerialization.data(withJSONObject: group)
        // Written aside and renamed: discovery never reads half a file.
        let path = directory.child("targets/\(name).json")
        try data.write(to: URL(fileURLWithPath: path + ".tmp"))
        guard rename(path + ".tmp", path) == 0 else { throw TestSupportError("cannot write \(path)") }
        return name
    }

    public func removeTarget(_ name: String) {
        unlink(directory.child("targets/\(name).json"))
    }

    /// The values of an instant query (one per series), through the HTTP API.
    public func query(_ promql: String) throws -> [Double] {
        let result = try ProcessRunner.run(
            "/usr/bin/curl", ["-sS", "--max-time", "5", "\(url)/api/v1/query", "--data-urlencode", "query=\(promql)"])
        guard result.status == 0,
            let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any],
            json["status"] as? String == "success", let data = json["data"] as? [String: Any]
        else { throw TestSupportError("query \(promql) failed: \(result.stdout)\(result.stderr)") }
        let samples: [[Any]]
        if data["resultType"] as? String == "scalar" {
            samples = [data["result"] as? [Any] ?? []]
        } else {
            samples = ((data["result"] as? [[String: Any]]) ?? []).compactMap { $0["value"] as? [Any] }
        }
        return samples.compactMap { ($0.last as? String).flatMap(Double.init) }
    }

    /// Waits until `promql` returns values that satisfy `condition` (20 s at most); the
    /// last values seen.
    @discardableResult
    public func waitFor(
        _ promql: String, timeout: Duration = .seconds(20), _ condition: ([Double]) -> Bool = { !$0.isEmpty }
    ) async throws -> [Double] {
        let deadline = ContinuousClock.now + timeout
        var values: [Double] = []
        while ContinuousClock.now < deadline {
            values = try query(promql)
            if condition(values) { return values }
            try await Task.sleep(for: .milliseconds(250))
        }
        throw TestSupportError("\(promql) did not reach the expected values within \(timeout); last: \(values)")
    }

    private static func stopShared() {
        lock.lock()
        defer { lock.unlock() }
        guard case .success(let server) = started else { return }
        started = nil
        FileManager.default.createFile(atPath: server.directory.child("stop"), contents: nil)
        for _ in 0..<100 where server.process.isRunning {
            usleep(50_000)
        }
    }
}
