import ArgumentParser
import BatonCLISupport
import BatonController
import Foundation

/// `baton demo`: all of Baton on this machine. In a temporary directory: a fleet CA,
/// keys and certificates, four `batond run` agents on 127.0.0.1, and a small HTTP
/// service as the app (restarted by `activate`, checked over HTTP). Then v1 to every
/// host, v2 with a canary and batches, v3 whose health check fails on the canary (halted,
/// rolled back), and `baton status` and `baton history`. Every step runs the real
/// commands, so what it prints is what an operator sees. Cleans up on exit and Ctrl-C.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run Baton end to end on this machine: four local agents, three releases, a halted rollout.",
        discussion: "Exits 0 when every step behaved as expected.",
        subcommands: [DemoServe.self, DemoActivate.self, DemoProbe.self])

    @Option(help: ArgumentHelp("The batond binary (default: next to this baton, then PATH).", valueName: "path")) var batond: String?
    @Option(help: "Number of agents.") var hosts = 4
    @Flag(help: "Keep the demo directory (and print its path) instead of removing it.") var keep = false

    func run() async throws {
        guard (2...20).contains(hosts) else { throw CLIError(code: "invalid_value", message: "--hosts must be 2 to 20") }
        let baton = Self.selfPath()
        let batondPath = try batond ?? Self.findBatond(next: baton)
        let dir = try Self.makeDirectory()
        let demo = DemoFleet(directory: dir, baton: baton, batond: batondPath, hostCount: hosts)
        let interrupts = InterruptWatcher { _ in
            demo.cleanUp(keep: false, interrupted: true)
            Output.error("\ninterrupted: agents and services stopped, \(dir) removed")
            Foundation.exit(130)
        }
        defer {
            interrupts.stop()
            demo.cleanUp(keep: keep)
            // Interrupted: the steps after Ctrl-C failed for that reason alone.
            if demo.interrupted { Foundation.exit(130) }
            if keep { Output.line("kept \(dir)") }
        }
        var ok = true
        func expect(_ step: String, _ status: Int32, _ expected: Int32) {
            let good = status == expected
            ok = ok && good
            Output.line(good ? "✓ \(step) (exit \(status), as expected)" : "✗ \(step): exit \(status), expected \(expected)")
        }

        Self.banner("1/6 a fleet in \(dir): CA, controller certificate, signing key, \(hosts) agents, a small HTTP service as the app")
        try demo.setUp()
        for line in demo.summary { Output.line("  " + line) }

        Self.banner("2/6 v1 to every host at once (baton deploy: create, sign, roll out)")
        expect("v1 everywhere", demo.baton(["deploy", "demo-web", "--artifact", "v1.tar.gz", "--release", "v1", "--environment", "demo",
                                            "--key", "keys/ci.key", "--notes", "first release", "--brief"]), 0)

        Self.banner("3/6 v2 the approval way: release create, manifest sign, rollout with a canary and batches of 2")
        _ = demo.baton(["release", "create", "demo-web", "--artifact", "v2.tar.gz", "--release", "v2", "--environment", "demo",
                        "--notes", "faster pages", "--source", "demo@v2", "-o", "v2.manifest.json"])
        _ = demo.baton(["manifest", "sign", "v2.manifest.json", "--key", "keys/ci.key"])
        expect("v2 rolled out", demo.baton(["rollout", "v2.manifest.envelope.json", "--canary", "1", "--batch", "2", "--brief"]), 0)

        Self.banner("4/6 v3 is broken: its health check fails on the canary; the rollout halts and the canary goes back to v2")
        _ = demo.baton(["release", "create", "demo-web", "--artifact", "v3.tar.gz", "--release", "v3", "--environment", "demo",
                        "--notes", "broken on purpose", "-o", "v3.manifest.json"])
        _ = demo.baton(["manifest", "sign", "v3.manifest.json", "--key", "keys/ci.key"])
        expect("v3 halted after the canary", demo.baton(["rollout", "v3.manifest.envelope.json", "--canary", "1", "--batch", "2", "--brief"]), 1)
        let live = demo.liveReleases()
        let allOnV2 = live.values.allSatisfy { $0 == "v2" }
        ok = ok && allOnV2
        Output.line(allOnV2 ? "✓ every service answers as v2" : "✗ services answer: \(live)")

        Self.banner("5/6 baton status: what every host runs")
        expect("status: no drift", demo.baton(["status", "demo-web"]), 0)

        Self.banner("6/6 baton history")
        expect("history", demo.baton(["history", "demo-web"]), 0)

        Output.line("")
        Output.line(ok ? "demo: every step behaved as expected" : "demo: some steps did not behave as expected (see ✗ above)")
        if !ok { throw ExitCode(1) }
    }

    static func banner(_ text: String) {
        let palette = Palette.forTerminal(isTTY: isatty(STDOUT_FILENO) == 1)
        Output.line("")
        Output.line(palette.enabled ? "\u{1B}[1m== \(text)\u{1B}[0m" : "== \(text)")
    }

    static func selfPath() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    static func findBatond(next baton: String) throws(CLIError) -> String {
        let sibling = ((baton as NSString).deletingLastPathComponent as NSString).appendingPathComponent("batond")
        if FileManager.default.isExecutableFile(atPath: sibling) { return sibling }
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let candidate = "\(directory)/batond"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw CLIError(code: "file_not_found", message: "batond not found next to \(baton) or on PATH; run `swift build` or pass --batond PATH")
    }

    static func makeDirectory() throws(CLIError) -> String {
        var template = Array((NSTemporaryDirectory() + "baton-demo.XXXXXX").utf8CString)
        guard let path = mkdtemp(&template) else {
            throw CLIError(code: "write_failed", message: "cannot make a temporary directory")
        }
        return String(cString: path)
    }
}

/// The demo's fleet: files, agents and services, all under one directory.
final class DemoFleet: @unchecked Sendable {
    let directory: String
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
    private(set) var interrupted = false
    private(set) var summary: [String] = []

    init(directory: String, baton: String, batond: String, hostCount: Int) {
        self.directory = directory
        self.batonPath = baton
        self.batondPath = batond
        self.hostIDs = (1...hostCount).map { "web-\($0)" }
    }

    func path(_ relative: String) -> String { "\(directory)/\(relative)" }

    func setUp() throws {
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
    func baton(_ arguments: [String]) -> Int32 {
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
    func liveReleases() -> [String: String] {
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
    func cleanUp(keep: Bool, interrupted: Bool = false) {
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
