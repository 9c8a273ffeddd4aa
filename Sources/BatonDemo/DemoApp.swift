import BatonCLISupport
import Foundation

/// The demo's app: a real (tiny) HTTP service, restarted by the release's `activate` hook
/// and checked over HTTP by its health check. Hidden subcommands of `baton demo`, so the
/// demo needs nothing but this binary on a fresh machine.
public enum DemoApp {
    /// `<host-id> <port>` lines in the demo directory: where each host's service listens.
    public static func port(for host: String, in directory: String) -> Int? {
        guard let text = try? String(contentsOfFile: "\(directory)/service-ports", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2, parts[0] == host { return Int(parts[1]) }
        }
        return nil
    }

    /// A listening socket on 127.0.0.1:port.
    static func listen(port: Int) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, Glibc.listen(fd, 16) == 0 else { close(fd); return nil }
        return fd
    }

    /// GET /health: 200 `ok <release>` for a good release, 503 for one with a BROKEN file.
    public static func serve(port: Int, releaseDirectory: String, pidFile: String) -> Never {
        // Whatever mask and dispositions it inherited, SIGTERM must stop it.
        var none = sigset_t()
        sigemptyset(&none)
        sigprocmask(SIG_SETMASK, &none, nil)
        signal(SIGTERM, SIG_DFL)
        guard let server = listen(port: port) else {
            Output.error("cannot listen on 127.0.0.1:\(port)")
            exit(1)
        }
        // Its own pid, written once it listens: `setsid` may have forked on the way here.
        try? "\(getpid())\n".write(toFile: pidFile, atomically: true, encoding: .utf8)
        let release = (try? String(contentsOfFile: "\(releaseDirectory)/VERSION", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
        let broken = FileManager.default.fileExists(atPath: "\(releaseDirectory)/BROKEN")
        while true {
            // The demo's directory holds everything of the demo: once it is removed (the
            // demo ended or was interrupted), a service still running has no one to serve
            // and stops by itself, even one its agent started after the clean-up looked.
            var ready = pollfd(fd: server, events: Int16(POLLIN), revents: 0)
            if poll(&ready, 1, 1000) == 0 {
                if !FileManager.default.fileExists(atPath: releaseDirectory) { exit(0) }
                continue
            }
            let client = accept(server, nil, nil)
            if client < 0 { continue }
            var buffer = [UInt8](repeating: 0, count: 2048)
            _ = read(client, &buffer, buffer.count)
            let body = broken ? "broken \(release)\n" : "ok \(release)\n"
            let status = broken ? "503 Service Unavailable" : "200 OK"
            let response = "HTTP/1.1 \(status)\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
            _ = response.withCString { write(client, $0, strlen($0)) }
            close(client)
        }
    }

    /// The status line and body of GET /health on 127.0.0.1:port.
    public static func get(port: Int) -> (Int, String)? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return nil }
        let request = "GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"
        _ = request.withCString { write(fd, $0, strlen($0)) }
        var data = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(fd, &buffer, buffer.count)
            if n <= 0 { break }
            data += buffer[0..<n]
        }
        let text = String(decoding: data, as: UTF8.self)
        guard let first = text.split(separator: "\r\n").first, let code = Int(first.split(separator: " ").dropFirst().first ?? "") else { return nil }
        return (code, text.components(separatedBy: "\r\n\r\n").dropFirst().joined())
    }

    /// The `activate` hook: stop the host's service, start it from the release now live
    /// (`baton` is the binary to start it with: `baton demo serve`).
    public static func activate(demoDir: String, baton: String) throws {
        let environment = ProcessInfo.processInfo.environment
        guard let host = environment["BATON_HOST"], let release = environment["BATON_RELEASE_DIR"],
            let port = DemoApp.port(for: host, in: demoDir)
        else { throw CLIError(code: "demo", message: "activate needs BATON_HOST, BATON_RELEASE_DIR and the ports file") }
        let pidFile = "\(demoDir)/service-\(host).pid"
        if let text = try? String(contentsOfFile: pidFile, encoding: .utf8), let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
            kill(pid, SIGTERM)
            var waited = 0
            while kill(pid, 0) == 0, waited < 100 { usleep(20_000); waited += 1 }
            if kill(pid, 0) == 0 { kill(pid, SIGKILL); usleep(50_000) }
        }
        // setsid: the service leaves the hook's process group, which the agent cleans up.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setsid")
        try? FileManager.default.removeItem(atPath: pidFile)
        process.arguments = [baton, "demo", "serve", "--port", "\(port)", "--release-dir", release, "--pid-file", pidFile]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        for _ in 0..<250 {
            if FileManager.default.fileExists(atPath: pidFile) { return }
            usleep(20_000)
        }
    }
}
