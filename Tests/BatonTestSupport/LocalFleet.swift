import Foundation

/// A fleet on loopback for controller tests: a fleet CA, a controller certificate and
/// signing key, a trust policy, and N real `batond run` processes (`host-1` ... `host-N`,
/// environment `staging`), all made with this package's `baton` binary. Writes the
/// fleet file, an app file (`web`) and a `baton.yaml` naming them, so that `baton`
/// commands run in `dir` work as an operator's would.
///
/// The app's health check passes in a release that has a `HEALTHY` file, except on the
/// hosts listed in its `FAIL_HOSTS` file: one artifact can fail on chosen hosts only.
public final class LocalFleet: @unchecked Sendable {
    public let dir: TemporaryDirectory
    public let hostIDs: [String]
    public private(set) var daemons: [String: Daemon] = [:]
    public let environment = "staging"

    public var root: String { dir.path }
    public var statePath: String { dir.child("state") }

    public static func start(hosts count: Int, down: Set<String> = []) async throws -> LocalFleet {
        let fleet = try await offThePool { try LocalFleet(hosts: count) }
        do {
            try await withThrowingTaskGroup(of: (String, Daemon).self) { group in
                for id in fleet.hostIDs where !down.contains(id) {
                    let config = fleet.dir.child("hosts/\(id)/batond.yaml")
                    group.addTask { (id, try await Daemon.start(config: config)) }
                }
                for try await (id, daemon) in group { fleet.daemons[id] = daemon }
            }
            try fleet.writeFleetFile(downPorts: down)
        } catch {
            fleet.shutdown()
            throw error
        }
        return fleet
    }

    private init(hosts count: Int) throws {
        dir = try TemporaryDirectory(prefix: "baton-fleet")
        hostIDs = (1...count).map { "host-\($0)" }
        do {
            try setUp()
        } catch {
            dir.remove()
            throw error
        }
    }

    private func setUp() throws {
        // The signing key, CA and certificates are made by `baton` once per test process
        // for each fleet size and copied here: a fleet of five costs nine processes to
        // make, and tens of fleets are started. Each fleet still has its own copy.
        let hostIDs = self.hostIDs
        try SharedFiles.shared.copy("fleet-\(hostIDs.count)-hosts", to: dir.path) { made in
            for sub in ["pki"] + hostIDs.map({ "hosts/\($0)/tls" }) {
                try FileManager.default.createDirectory(atPath: "\(made)/\(sub)", withIntermediateDirectories: true)
            }
            try Self.baton(["keys", "generate", "ci", "--dir", "\(made)/keys"])
            try Self.baton(["pki", "init", "\(made)/pki/ca"])
            try Self.baton(["pki", "issue", "controller", "ci", "--ca", "\(made)/pki/ca", "--out", "\(made)/pki"])
            for id in hostIDs {
                try Self.baton(["pki", "issue", "agent", id, "--ip", "127.0.0.1", "--ca", "\(made)/pki/ca", "--out", "\(made)/hosts/\(id)/tls"])
            }
        }
        try """
            keys:
              ci: keys/ci.pub
            environments:
              staging: {threshold: 1, keys: [ci], rollbackThreshold: 1}
              production: {threshold: 1, keys: [ci], rollbackThreshold: 1}
            """.write(toFile: dir.child("trust-policy.yaml"), atomically: false, encoding: .utf8)
        for id in hostIDs {
            let hostDir = dir.child("hosts/\(id)")
            try """
                hostId: \(id)
                environment: \(environment)
                dataDir: \(hostDir)/data
                trust: \(dir.child("trust-policy.yaml"))
                listen: 127.0.0.1:0
                metricsListen: 127.0.0.1:0
                tls:
                  certificate: tls/\(id).pem
                  privateKey: tls/\(id).key
                  ca: \(dir.child("pki/ca/ca.pem"))
                """.write(toFile: "\(hostDir)/batond.yaml", atomically: false, encoding: .utf8)
        }
        try FileManager.default.createDirectory(atPath: dir.child("apps"), withIntermediateDirectories: true)
        try """
            app: web
            owner: team-web
            environments: [staging, production]
            keep: 3
            hooks:
              activate:
                command: ["/bin/sh", "-c", "while [ -e '\(dir.child("hold"))' ] && [ -d '\(dir.path)' ]; do sleep 0.05; done"]
                timeout: 2m
            health:
              checks:
                - type: command
                  command: ["/bin/sh", "-c", "test -f HEALTHY && ! grep -qx \\"$BATON_HOST\\" FAIL_HOSTS 2>/dev/null"]
              timeout: 1s
              interval: 100ms
              deadline: 1s
            """.write(toFile: dir.child("apps/web.yaml"), atomically: false, encoding: .utf8)
        try """
            fleet: fleet.yaml
            apps: apps
            trustPolicy: trust-policy.yaml
            stateDir: state
            tls: {certificate: pki/ci.pem, key: pki/ci.key, ca: pki/ca/ca.pem}
            signingKey: keys/ci.key
            """.write(toFile: dir.child("baton.yaml"), atomically: false, encoding: .utf8)
    }

    /// Rewrites `fleet.yaml` with each running agent's port; a host that is down gets a
    /// port nothing listens on.
    public func writeFleetFile(downPorts: Set<String> = []) throws {
        var text = "hosts:\n"
        for (index, id) in hostIDs.enumerated() {
            let port = daemons[id]?.apiPort ?? Self.closedPort()
            text += "  - {id: \(id), address: \"127.0.0.1:\(port)\", environment: \(environment), labels: {role: \(index % 2 == 0 ? "web" : "worker")}}\n"
        }
        try text.write(toFile: dir.child("fleet.yaml"), atomically: true, encoding: .utf8)
    }

    /// A port that was free a moment ago: connecting to it is refused.
    static func closedPort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// While the `hold` file exists, every deployment waits in its activate hook: a test
    /// holds a rollout mid-way without sleeping.
    public func hold() throws { try Data().write(to: URL(fileURLWithPath: dir.child("hold"))) }
    public func release() { try? FileManager.default.removeItem(atPath: dir.child("hold")) }

    /// A real tar.gz release: VERSION, HEALTHY unless `healthy` is false, FAIL_HOSTS
    /// listing `failOn`, and `files` extra files.
    public func artifact(_ release: String, healthy: Bool = true, failOn: [String] = [], files: Int = 3) throws -> String {
        let source = dir.child("src-\(release)")
        try FileManager.default.createDirectory(atPath: "\(source)/lib", withIntermediateDirectories: true)
        try (release + "\n").write(toFile: "\(source)/VERSION", atomically: false, encoding: .utf8)
        if healthy { try "ok\n".write(toFile: "\(source)/HEALTHY", atomically: false, encoding: .utf8) }
        if !failOn.isEmpty { try (failOn.joined(separator: "\n") + "\n").write(toFile: "\(source)/FAIL_HOSTS", atomically: false, encoding: .utf8) }
        for i in 0..<files { try "\(release) \(i)\n".write(toFile: "\(source)/lib/f\(i).txt", atomically: false, encoding: .utf8) }
        let out = dir.child("\(release).tar.gz")
        let result = try ProcessRunner.run("/bin/tar", ["-czf", out, "-C", source, "."])
        guard result.status == 0 else { throw TestSupportError("tar failed: \(result.stderr)") }
        try FileManager.default.removeItem(atPath: source)
        return out
    }

    /// Runs `baton` in the fleet directory (so `baton.yaml` applies), off the pool.
    public func run(_ arguments: [String], environment: [String: String] = [:]) async throws -> ProcessResult {
        let dir = self.dir.path
        return try await offThePool {
            try ProcessRunner.run(ProcessRunner.executable("baton"), arguments, environment: environment, currentDirectory: dir)
        }
    }

    /// Starts `baton` in the fleet directory and returns at once; its stdout is read line
    /// by line (a test can act when a given line appears).
    public func start(_ arguments: [String]) throws -> BackgroundCommand {
        try BackgroundCommand(ProcessRunner.executable("baton"), arguments, currentDirectory: dir.path)
    }

    /// The app's state on a host, as `batond status --json` reads it from the data
    /// directory (works whether or not the daemon runs).
    public func status(_ host: String) throws -> [String: Any] {
        let result = try ProcessRunner.run(
            ProcessRunner.executable("batond"), ["status", "--config", dir.child("hosts/\(host)/batond.yaml"), "--json"])
        guard result.status == 0, let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        else { throw TestSupportError("batond status failed for \(host): \(result.stderr)") }
        return object
    }

    /// The agent's own state file for `web` on a host (readable while the daemon runs).
    public func appState(_ host: String) throws -> [String: Any] {
        let path = dir.child("hosts/\(host)/data/state/apps/web.json")
        guard let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any]
        else { throw TestSupportError("\(path) is not a JSON object") }
        return object
    }

    /// The releases of `web` a host holds an approved manifest for, sorted.
    public func approvedReleases(_ host: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.child("hosts/\(host)/data/state/approved/web"))) ?? []
        return names.filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.sorted()
    }

    /// The `current` release of `web` on a host, read from the symlink itself.
    public func current(_ host: String) -> String? {
        let link = dir.child("hosts/\(host)/data/apps/web/current")
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: link) else { return nil }
        return (target as NSString).lastPathComponent
    }

    /// The deployment records on a host, oldest (lowest serial) first.
    public func records(_ host: String) throws -> [[String: Any]] {
        let directory = dir.child("hosts/\(host)/data/state/deployments")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return try names.filter { $0.hasSuffix(".json") }.compactMap { name in
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(name)"))) as? [String: Any]
        }.sorted { ($0["serial"] as? Int ?? 0) < ($1["serial"] as? Int ?? 0) }
    }

    public func kill(_ host: String) async {
        await daemons[host]?.kill9()
    }

    /// Starts a host's agent again (on a new port) and rewrites the fleet file.
    public func restart(_ host: String) async throws {
        daemons[host] = try await Daemon.start(config: dir.child("hosts/\(host)/batond.yaml"))
        try writeFleetFile()
    }

    /// Starts a host's agent again on the port it had, so a controller that read the fleet
    /// file before (a running `baton drill`) still reaches it.
    public func restartOnSamePort(_ host: String) async throws {
        let config = dir.child("hosts/\(host)/batond.yaml")
        guard let port = daemons[host]?.apiPort, port > 0 else { throw TestSupportError("\(host) had no port") }
        let text = try String(contentsOfFile: config, encoding: .utf8)
        try text.replacingOccurrences(of: "listen: 127.0.0.1:0\n", with: "listen: 127.0.0.1:\(port)\n")
            .write(toFile: config, atomically: false, encoding: .utf8)
        daemons[host] = try await Daemon.start(config: config)
        try writeFleetFile()
    }

    /// Runs `batond` with a host's configuration (`apply`, `status`), off the pool.
    public func batond(_ host: String, _ arguments: [String]) async throws -> ProcessResult {
        let config = dir.child("hosts/\(host)/batond.yaml"), directory = dir.path
        return try await offThePool {
            try ProcessRunner.run(ProcessRunner.executable("batond"), [arguments[0], "--config", config] + arguments.dropFirst(), currentDirectory: directory)
        }
    }

    public func stop() {
        for daemon in daemons.values { daemon.stop() }
    }

    /// Stops every agent and removes the directory. Synchronous, for `defer`: a task
    /// started there might never run before the test process ends.
    public func shutdown() {
        for daemon in daemons.values { daemon.stop() }
        for daemon in daemons.values { daemon.process.waitUntilExit() }
        dir.remove()
    }

    @discardableResult
    private static func baton(_ arguments: [String]) throws -> ProcessResult {
        let result = try ProcessRunner.run(ProcessRunner.executable("baton"), arguments)
        guard result.status == 0 else { throw TestSupportError("baton \(arguments.joined(separator: " ")) failed: \(result.stderr)") }
        return result
    }
}
