import BatonCLISupport
import Foundation

/// The demo's fleet: files, agents and services, all under one directory.
public final class DemoFleet: @unchecked Sendable {
    public static func selfPath() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    public static func findBatond(next baton: String) throws(CLIError) -> String {
        let sibling = ((baton as NSString).deletingLastPathComponent as NSString).appendingPathComponent("batond")
        if FileManager.default.isExecutableFile(atPath: sibling) { return sibling }
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let candidate = "\(directory)/batond"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw CLIError(code: "file_not_found", message: "batond not found next to \(baton) or on PATH; run `swift build` or pass --batond PATH")
    }

    public static func makeDirectory() throws(CLIError) -> String {
        var template = Array((NSTemporaryDirectory() + "baton-demo.XXXXXX").utf8CString)
        guard let path = mkdtemp(&template) else {
            throw CLIError(code: "write_failed", message: "cannot make a temporary directory")
        }
        return String(cString: path)
    }

    public let directory: String
    let batonPath: String
    let batondPath: String
    let hostIDs: [String]
    private var agents: [Process] = []
    /// The `baton` command running now (a rollout, say): stopped before the clean-up, or
    /// it would write into the directory while it is being removed.
    private var child: Process?
    private let lock = NSCondition()
    private var cleaned = false
    private var cleanedUp = false
    /// Set when Ctrl-C started the clean-up.
    public private(set) var interrupted = false
    public private(set) var summary: [String] = []

    public init(directory: String, baton: String, batond: String, hostCount: Int) {
        self.directory = directory
        self.batonPath = baton
        self.batondPath = batond
        self.hostIDs = (1...hostCount).map { "web-\($0)" }
    }

    func path(_ relative: String) -> String { "\(directory)/\(relative)" }

    public func setUp() throws {
        let fm = FileManager.default
        for sub in ["pki", "keys", "apps"] { try fm.createDirectory(atPath: path(sub), withIntermediateDirectories: true) }
        try quiet(["pki", "init", path("pki/ca"), "--name", "demo"])
        try quiet(["pki", "issue", "controller", "ci", "--ca", path("pki/ca"), "--out", path("pki")])
        try quiet(["keys", "generate", "ci", "--dir", path("keys")])
        try """
            keys: {ci: keys/ci.pub}
            environments:
              demo: {threshold: 1, keys: [ci], rollbackThreshold: 1}
            """.write(toFile: path("trust-policy.yaml"), atomically: true, encoding: .utf8)
        var fleet = "hosts:\n"
        var servicePorts = ""
        for id in hostIDs {
            let agentPort = try Self.freePort(), servicePort = try Self.freePort()
            try fm.createDirectory(atPath: path("hosts/\(id)/tls"), withIntermediateDirectories: true)
            try quiet(["pki", "issue", "agent", id, "--ip", "127.0.0.1", "--ca", path("pki/ca"), "--out", path("hosts/\(id)/tls")])
            try """
                hostId: \(id)
                environment: demo
                dataDir: \(path("hosts/\(id)/data"))
                listen: 127.0.0.1:\(agentPort)
                metricsListen: 127.0.0.1:0
                tls: {certificate: tls/\(id).pem, privateKey: tls/\(id).key, ca: \(path("pki/ca/ca.pem"))}
                trust: \(path("trust-policy.yaml"))
                """.write(toFile: path("hosts/\(id)/batond.yaml"), atomically: true, encoding: .utf8)
            fleet += "  - {id: \(id), address: \"127.0.0.1:\(agentPort)\", environment: demo, labels: {role: web}}\n"
            servicePorts += "\(id) \(servicePort)\n"
            summary.append("\(id): agent https://127.0.0.1:\(agentPort), service http://127.0.0.1:\(servicePort)/health")
        }
        try fleet.write(toFile: path("fleet.yaml"), atomically: true, encoding: .utf8)
        try servicePorts.write(toFile: path("service-ports"), atomically: true, encoding: .utf8)
        try """
            app: demo-web
            owner: demo-team
            environments: [demo]
            keep: 3
            hooks:
              activate: {command: ["\(batonPath)", demo, activate, --demo-dir, "\(directory)"], timeout: 10s}
            health:
              checks:
                - {type: command, command: ["\(batonPath)", demo, probe, --demo-dir, "\(directory)"]}
              interval: 200ms
              deadline: 3s
            bake: 1s
            """.write(toFile: path("apps/demo-web.yaml"), atomically: true, encoding: .utf8)
        try """
            fleet: fleet.yaml
            apps: apps
            trustPolicy: trust-policy.yaml
            stateDir: state
            tls: {certificate: pki/ci.pem, key: pki/ci.key, ca: pki/ca/ca.pem}
            signingKey: keys/ci.key
            """.write(toFile: path("baton.yaml"), atomically: true, encoding: .utf8)
        for (name, broken) in [("v1", false), ("v2", false), ("v3", true)] { try artifact(name, broken: broken) }
        for id in hostIDs { try startAgent(id) }
        for id in hostIDs { try waitForAgent(id) }
        summary.append("app demo-web: an HTTP service restarted by its activate hook, checked with GET /health")
    }

    private func artifact(_ name: String, broken: Bool) throws {
        let source = path("src-\(name)")
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        try "\(name)\n".write(toFile: "\(source)/VERSION", atomically: true, encoding: .utf8)
        try "<h1>demo-web \(name)</h1>\n".write(toFile: "\(source)/index.html", atomically: true, encoding: .utf8)
        if broken { try "health checks fail on purpose\n".write(toFile: "\(source)/BROKEN", atomically: true, encoding: .utf8) }
        let tar = Process()
        tar.executableURL = URL(fileURLWithPath: "/bin/tar")
        tar.arguments = ["-czf", path("\(name).tar.gz"), "-C", source, "."]
        try tar.run()
        tar.waitUntilExit()
        guard tar.terminationStatus == 0 else { throw CLIError(code: "demo", message: "tar failed for \(name)", exitCode: 1) }
    }

    private func startAgent(_ id: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: batondPath)
        process.arguments = ["run", "--config", path("hosts/\(id)/batond.yaml")]
        FileManager.default.createFile(atPath: path("hosts/\(id)/batond.log"), contents: nil)
        process.standardError = FileHandle(forWritingAtPath: path("hosts/\(id)/batond.log"))
        process.standardOutput = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        lock.withLock { agents.append(process) }
    }

    private func waitForAgent(_ id: String) throws {
        for _ in 0..<300 {
            if let log = try? String(contentsOfFile: path("hosts/\(id)/batond.log"), encoding: .utf8), log.contains("api listening") { return }
            usleep(20_000)
        }
        let log = (try? String(contentsOfFile: path("hosts/\(id)/batond.log"), encoding: .utf8)) ?? ""
        throw CLIError(code: "demo", message: "the agent \(id) did not start:\n\(log)", exitCode: 1)
    }

    /// An argument as a shell would need it typed.
    static func shellQuoted(_ argument: String) -> String {
        let plain = argument.allSatisfy { $0.isLetter || $0.isNumber || "-_./=:@,%+".contains($0) }
        return plain && !argument.isEmpty ? argument : "'" + argument.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// Runs `baton` in the demo directory, its output on this terminal; the exit status.
    public func baton(_ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: batonPath)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        Output.line("$ baton \(arguments.map(Self.shellQuoted).joined(separator: " "))")
        let stopped = lock.withLock { () -> Bool in
            if !cleaned { child = process }
            return cleaned
        }
        if stopped { return 130 }
        do { try process.run() } catch { return 127 }
        process.waitUntilExit()
        lock.withLock { child = nil }
        return process.terminationStatus
    }

    private func quiet(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: batonPath)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw CLIError(code: "demo", message: "baton \(arguments.joined(separator: " ")): \(String(decoding: message, as: UTF8.self))", exitCode: 1)
        }
    }

    /// What each host's service says it serves.
    public func liveReleases() -> [String: String] {
        var result: [String: String] = [:]
        for id in hostIDs {
            guard let port = DemoApp.port(for: id, in: directory), let (status, body) = DemoApp.get(port: port) else {
                result[id] = "no answer"
                continue
            }
            result[id] = status == 200 ? body.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "ok ", with: "") : "status \(status)"
        }
        return result
    }

    /// Stops the services and agents and removes the directory; safe to call twice.
    public func cleanUp(keep: Bool, interrupted: Bool = false) {
        let (agents, child, already) = lock.withLock { () -> ([Process], Process?, Bool) in
            defer { cleaned = true }
            if interrupted { self.interrupted = true }
            return (self.agents, self.child, cleaned)
        }
        if already {
            // The other caller (Ctrl-C, or the end of the demo) is cleaning up: its work is
            // done only when this returns, so the process does not exit half-way.
            lock.lock()
            while !cleanedUp { lock.wait() }
            lock.unlock()
            return
        }
        defer {
            lock.lock()
            cleanedUp = true
            lock.broadcast()
            lock.unlock()
        }
        // The command running now ends first (as Ctrl-C would end it), then the agents.
        if let child, child.isRunning {
            child.interrupt()
            for _ in 0..<100 where child.isRunning { usleep(50_000) }
            if child.isRunning { child.terminate() }
            child.waitUntilExit()
        }
        for id in hostIDs {
            if let text = try? String(contentsOfFile: path("service-\(id).pid"), encoding: .utf8),
                let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
            {
                kill(pid, SIGKILL)
            }
        }
        for agent in agents where agent.isRunning { agent.terminate() }
        for agent in agents { agent.waitUntilExit() }
        guard !keep else { return }
        // A service may still write its pid file in the moment before it notices: retry.
        for _ in 0..<40 where FileManager.default.fileExists(atPath: directory) {
            try? FileManager.default.removeItem(atPath: directory)
            if FileManager.default.fileExists(atPath: directory) { usleep(50_000) }
        }
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard ok else { throw CLIError(code: "demo", message: "no free port on 127.0.0.1", exitCode: 1) }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
