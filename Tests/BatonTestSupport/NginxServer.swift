import Foundation

/// A real nginx from Debian's package, started by a test with a configuration of its
/// own in a temporary directory (its prefix: config, logs, pid, temp paths and the files
/// it serves under `www/`), listening on a free 127.0.0.1 port, over HTTPS when given a
/// certificate. Stopped, and its directory removed, by `stop()`; a watchdog shell does
/// the same if the test process dies first.
///
/// As root (CI, this workplace) the `user root;` directive keeps the workers able to read
/// the temporary directory, which only its owner may enter.
public final class NginxServer: @unchecked Sendable {
    public let port: Int
    public let directory: TemporaryDirectory
    public let isHTTPS: Bool
    private let process: Process

    public struct TLS: Sendable {
        public var certificate: String
        public var key: String
        public init(certificate: String, key: String) {
            self.certificate = certificate
            self.key = key
        }
    }

    /// The files served: `url("/a/b")` serves `www/a/b`.
    public var root: String { directory.child("www") }

    /// `nginx` from the PATH or Debian's `/usr/sbin/nginx`.
    public static func binary() throws -> String {
        for dir in ["/usr/sbin"] + (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
        where FileManager.default.isExecutableFile(atPath: "\(dir)/nginx") {
            return "\(dir)/nginx"
        }
        throw TestSupportError("nginx is not installed (no /usr/sbin/nginx, none on the PATH): install Debian's `nginx` package (.ci/run does)")
    }

    /// Starts nginx. `serverDirectives` go into its one `server` block (locations with
    /// `limit_rate`, `max_ranges 0`, `return 302 ...`).
    public init(tls: TLS? = nil, serverDirectives: String = "") throws {
        let nginx = try Self.binary()
        directory = try TemporaryDirectory(prefix: "baton-nginx")
        isHTTPS = tls != nil
        do {
            for sub in ["www", "logs", "tmp"] {
                try FileManager.default.createDirectory(atPath: directory.child(sub), withIntermediateDirectories: true)
            }
            var lastError = ""
            for _ in 0..<5 {
                let port = LocalFleet.closedPort()
                try Self.configuration(directory: directory, port: port, tls: tls, serverDirectives: serverDirectives)
                    .write(toFile: directory.child("nginx.conf"), atomically: false, encoding: .utf8)
                let process = Process()
                process.executableURL = URL(fileURLWithPath: "/bin/bash")
                process.arguments = [
                    "-c", Self.watchdog, "watchdog", "\(getpid())", directory.path, nginx,
                    "-p", directory.path, "-c", directory.child("nginx.conf"), "-e", directory.child("logs/error.log"),
                    "-g", "daemon off; pid \(directory.child("logs/nginx.pid"));",
                ]
                process.standardOutput = FileHandle.nullDevice
                process.standardError = FileHandle.nullDevice
                process.standardInput = FileHandle.nullDevice
                try process.run()
                if Self.waitUntilListening(port: port, process: process) {
                    self.port = port
                    self.process = process
                    return
                }
                lastError = fileText(directory.child("logs/error.log"))
                if process.isRunning {
                    _ = FileManager.default.createFile(atPath: directory.child("stop"), contents: nil)
                    process.waitUntilExit()
                    break
                }
            }
            throw TestSupportError("nginx did not start: \(lastError)")
        } catch {
            directory.remove()
            throw error
        }
    }

    public var scheme: String { isHTTPS ? "https" : "http" }

    /// `https://127.0.0.1:PORT/path`.
    public func url(_ path: String) -> String { "\(scheme)://127.0.0.1:\(port)\(path)" }

    /// Copies `file` to be served at `path` (e.g. `/artifacts/web-v2.tar.gz`).
    public func serve(_ file: String, at path: String) throws {
        let destination = root + path
        try FileManager.default.createDirectory(
            atPath: (destination as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try? FileManager.default.removeItem(atPath: destination)
        try FileManager.default.copyItem(atPath: file, toPath: destination)
    }

    /// The access log so far: one line per request, `$status $body_bytes_sent "$request"
    /// "$http_range" "$http_if_range" $msec $request_time` (the end of the request and how
    /// long it took, in seconds with milliseconds).
    public var accessLog: [String] {
        fileText(directory.child("logs/access.log")).split(separator: "\n").map(String.init)
    }

    public var errorLog: String { fileText(directory.child("logs/error.log")) }

    /// Stops nginx (the watchdog sends SIGTERM, a fast shutdown) and removes its directory.
    public func stop() {
        _ = FileManager.default.createFile(atPath: directory.child("stop"), contents: nil)
        process.waitUntilExit()
        directory.remove()
    }

    static func configuration(directory: TemporaryDirectory, port: Int, tls: TLS?, serverDirectives: String) -> String {
        let d = directory.path
        return """
            \(getuid() == 0 ? "user root;" : "")
            worker_processes 1;
            error_log \(d)/logs/error.log info;
            events { worker_connections 256; }
            http {
                log_format baton '$status $body_bytes_sent "$request" "$http_range" "$http_if_range" $msec $request_time';
                access_log \(d)/logs/access.log baton;
                client_body_temp_path \(d)/tmp/client_body;
                proxy_temp_path \(d)/tmp/proxy;
                fastcgi_temp_path \(d)/tmp/fastcgi;
                uwsgi_temp_path \(d)/tmp/uwsgi;
                scgi_temp_path \(d)/tmp/scgi;
                default_type application/octet-stream;
                server {
                    listen 127.0.0.1:\(port)\(tls == nil ? "" : " ssl");
                    \(tls.map { "ssl_certificate \($0.certificate);\n        ssl_certificate_key \($0.key);" } ?? "")
                    root \(d)/www;
                    \(serverDirectives)
                }
            }
            """
    }

    /// `bash -c WATCHDOG watchdog TEST_PID DIRECTORY NGINX_COMMAND...`: runs nginx and
    /// stops it (SIGTERM to the master) when `DIRECTORY/stop` appears or the test process
    /// is gone; in the second case it removes the directory too. Polling, not signals:
    /// the test process's threads block signals, and children inherit that mask.
    private static let watchdog = """
        test_pid=$1; dir=$2; shift 2
        "$@" & server=$!
        while kill -0 "$test_pid" 2>/dev/null && [ ! -e "$dir/stop" ] && [ -n "$(jobs -rp)" ]; do sleep 0.1; done
        kill -TERM "$server" 2>/dev/null; wait "$server"
        kill -0 "$test_pid" 2>/dev/null || rm -rf "$dir"
        """

    private static func waitUntilListening(port: Int, process: Process) -> Bool {
        for _ in 0..<200 {
            guard process.isRunning else { return false }
            if canConnect(port: port) { return true }
            usleep(25_000)
        }
        return false
    }

    static func canConnect(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}
