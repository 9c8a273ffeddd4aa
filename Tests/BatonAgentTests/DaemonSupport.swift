import BatonAgent
import BatonProtocol
import BatonTestSupport
import Foundation

// Support for the tests that run real `batond run` processes on 127.0.0.1 and talk to
// them as a controller would, with curl and `openssl s_client` as independent clients.

/// A fleet CA and the certificates the daemon tests need, all made by `baton pki` (the
/// `baton` binary of this package): the agent's, a controller's, another agent's (a
/// stolen agent certificate used as a client), and a controller certificate from a
/// CA the agent does not trust.
struct DaemonPKI {
    let dir: String
    var caFile: String { "\(dir)/ca/ca.pem" }
    let hostID: String

    struct Credential {
        let certificate: String
        let key: String
    }

    var agent: Credential { Credential(certificate: "\(dir)/agent/\(hostID).pem", key: "\(dir)/agent/\(hostID).key") }
    var controller: Credential { Credential(certificate: "\(dir)/ctl/ci.pem", key: "\(dir)/ctl/ci.key") }
    var otherAgent: Credential { Credential(certificate: "\(dir)/other-agent/host-9.pem", key: "\(dir)/other-agent/host-9.key") }
    var foreignController: Credential { Credential(certificate: "\(dir)/foreign/ci.pem", key: "\(dir)/foreign/ci.key") }

    /// The files are made by `baton pki` once per test process (per host ID) and copied
    /// into `dir`: six processes a host, and every daemon test makes a host. Each host
    /// gets its own copy, CA key included, so `issueAgent` still issues fresh ones.
    init(in dir: String, hostID: String) throws {
        self.dir = dir
        self.hostID = hostID
        try SharedFiles.shared.copy("daemon-pki-\(hostID)", to: dir) { made in
            let original = DaemonPKI(made: made, hostID: hostID)
            try Self.baton(["pki", "init", "\(made)/ca"])
            try original.issueAgent(into: "\(made)/agent")
            try Self.baton(["pki", "issue", "controller", "ci", "--ca", "\(made)/ca", "--out", "\(made)/ctl"])
            try Self.baton(["pki", "issue", "agent", "host-9", "--ip", "127.0.0.1", "--ca", "\(made)/ca", "--out", "\(made)/other-agent"])
            try Self.baton(["pki", "init", "\(made)/foreign-ca"])
            try Self.baton(["pki", "issue", "controller", "ci", "--ca", "\(made)/foreign-ca", "--out", "\(made)/foreign"])
        }
    }

    private init(made dir: String, hostID: String) {
        self.dir = dir
        self.hostID = hostID
    }

    /// Issues this host's agent certificate (a new key each time) into `out`.
    func issueAgent(into out: String) throws {
        try Self.baton(["pki", "issue", "agent", hostID, "--ip", "127.0.0.1", "--dns", "localhost", "--ca", "\(dir)/ca", "--out", out])
    }

    @discardableResult
    static func baton(_ arguments: [String]) throws -> ProcessResult {
        for index in arguments.indices.dropFirst() where arguments[index - 1] == "--out" {
            try FileManager.default.createDirectory(atPath: arguments[index], withIntermediateDirectories: true)
        }
        let result = try ProcessRunner.runTool("baton", arguments)
        guard result.status == 0 else {
            throw TestSupportError("baton \(arguments.joined(separator: " ")) failed: \(result.stderr)")
        }
        return result
    }

    /// The serial of the certificate in a PEM file, as `openssl x509 -serial` prints it.
    static func serial(ofCertificate path: String) throws -> String {
        let output = try OpenSSL.run(["x509", "-noout", "-serial", "-in", path]).stdout
        return normalizedSerial(output)
    }

    static func normalizedSerial(_ text: String) -> String {
        var hex = text.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        if hex.hasPrefix("serial=") { hex.removeFirst("serial=".count) }
        while hex.hasPrefix("0"), hex.count > 1 { hex.removeFirst() }
        return hex
    }
}

/// A host for a daemon test: an `AgentFixture` (keys, trust policy, artifacts, signed
/// envelopes) whose `batond.yaml` also names loopback listeners on free ports and the
/// TLS files from `DaemonPKI`.
final class DaemonHost: @unchecked Sendable {
    let fixture: AgentFixture
    let pki: DaemonPKI
    /// A second signing key the trust policy also knows (`ci2`), for threshold tests.
    let secondKey = SigningKey()

    var dir: TemporaryDirectory { fixture.dir }
    var configPath: String { fixture.configPath }

    /// `threshold` 2 makes the policy need both `ci` and `ci2`; envelopes from
    /// `envelope(...)` are signed by both unless told otherwise.
    init(threshold: Int = 1, limits: String = "") throws {
        fixture = try AgentFixture(
            hostID: "host-1", environment: "staging",
            extraConfig: """
                listen: 127.0.0.1:0
                metricsListen: 127.0.0.1:0
                tls:
                  certificate: tls/agent.pem
                  privateKey: tls/agent.key
                  ca: tls/ca.pem
                \(limits)
                """)
        do {
            pki = try DaemonPKI(in: fixture.dir.child("pki"), hostID: "host-1")
            try setUp(threshold: threshold)
        } catch {
            fixture.remove()
            throw error
        }
    }

    private func setUp(threshold: Int) throws {
        try FileManager.default.createDirectory(atPath: fixture.dir.child("tls"), withIntermediateDirectories: true)
        try installAgentCertificate(from: pki.agent)
        try FileManager.default.copyItem(atPath: pki.caFile, toPath: fixture.dir.child("tls/ca.pem"))
        try secondKey.verifyingKey.pem.write(toFile: fixture.dir.child("ci2.pub"), atomically: false, encoding: .utf8)
        try """
            keys:
              ci: ci.pub
              ci2: ci2.pub
            environments:
              staging: {threshold: \(threshold), keys: [ci, ci2]}
            """.write(toFile: fixture.dir.child("trust.yaml"), atomically: false, encoding: .utf8)
    }

    var agentCertificatePath: String { fixture.dir.child("tls/agent.pem") }
    var agentKeyPath: String { fixture.dir.child("tls/agent.key") }

    /// Copies a certificate and key over the files the configuration names.
    func installAgentCertificate(from credential: DaemonPKI.Credential) throws {
        for (from, to) in [(credential.certificate, agentCertificatePath), (credential.key, agentKeyPath)] {
            let data = try Data(contentsOf: URL(fileURLWithPath: from))
            try data.write(to: URL(fileURLWithPath: to), options: .atomic)
        }
        // batond refuses a private key others can read.
        chmod(agentKeyPath, 0o600)
    }

    func remove() { fixture.remove() }

    /// A host, made off the cooperative pool (`baton pki` runs several processes).
    static func make(threshold: Int = 1, limits: String = "") async throws -> DaemonHost {
        try await offThePool { try DaemonHost(threshold: threshold, limits: limits) }
    }

    /// Starts `batond run` on this host's configuration and waits until it serves.
    func start(_ extra: [String] = []) async throws -> Daemon {
        try await Daemon.start(config: configPath, extra: extra)
    }

    /// A real tar.gz artifact (made by the system tar, off the cooperative pool).
    func artifact(_ release: String, files: [String: String] = [:], extraFiles: Int = 0) async throws -> AgentFixture.Artifact {
        let fixture = self.fixture
        return try await offThePool { try fixture.artifact(release, files: files, extraFiles: extraFiles) }
    }

    func client(_ daemon: Daemon, as credential: DaemonPKI.Credential? = nil) -> APIClient {
        APIClient(port: daemon.apiPort, caFile: pki.caFile, credential: credential ?? pki.controller, scratch: dir.child("curl"))
    }

    // MARK: Envelopes

    /// A signed envelope: by default for `artifact` with the next serial, signed by `ci`
    /// and `ci2`; every field can be bent for a refusal test.
    func envelope(
        _ release: String, artifact: AgentFixture.Artifact, hooks: Hooks? = nil, health: HealthPolicy? = nil,
        serial: UInt64? = nil, environment: String? = nil, targets: [String]? = nil, expiresAt: Date? = nil,
        signers: [SigningKey]? = nil, tamper: Bool = false
    ) throws -> String {
        if let serial { fixture.serial = serial } else { fixture.serial += 1 }
        let now = Date()
        let manifest = Manifest(
            app: fixture.app, release: release, serial: fixture.serial, environment: environment ?? fixture.environment,
            targets: targets, issuedAt: now.addingTimeInterval(-60), expiresAt: expiresAt ?? now.addingTimeInterval(3600),
            artifact: ArtifactReference(sha256: artifact.sha256, size: artifact.size, format: .tarGz),
            hooks: hooks, health: health)
        var envelope = Envelope(payloadType: Manifest.payloadType, payload: Array(try BatonJSON.encode(manifest)))
        for key in signers ?? [fixture.key, secondKey] { envelope.sign(with: key) }
        if tamper { for index in envelope.signatures.indices { envelope.signatures[index].sig[0] ^= 0x01 } }
        let path = fixture.dir.child("\(release)-\(fixture.serial)-\(UInt32.random(in: 0...UInt32.max)).envelope.json")
        try envelope.serialized().write(to: URL(fileURLWithPath: path))
        return path
    }

    /// A shell hook that waits until `gate` exists: holds a deployment in a phase until
    /// the test opens the gate, with no sleeps in the test itself. It also ends when the
    /// test's directory is gone, so a hook orphaned by a killed daemon never outlives
    /// the test.
    func gatedHook(_ gate: String) -> Hook {
        let directory = (gate as NSString).deletingLastPathComponent
        return Hook(
            command: .shell("while [ ! -e '\(gate)' ]; do [ -d '\(directory)' ] || exit 1; sleep 0.05; done"),
            timeout: .seconds(120))
    }

    static let fastHealth = HealthPolicy(
        checks: [.command(.argv(["/bin/sh", "-c", "test -f HEALTHY"]))], timeout: .seconds(1),
        interval: BatonDuration(milliseconds: 100), deadline: .seconds(2))
}

/// A controller speaking to the API with curl: TLS 1.3, the fleet CA as the only trust
/// root, a client certificate.
struct APIClient {
    let port: Int
    let caFile: String
    let credential: DaemonPKI.Credential?
    let scratch: String

    struct Answer {
        /// 0 when no HTTP answer came (the TLS handshake failed).
        let status: Int
        let body: String
        let curlStatus: Int32
        let curlError: String

        var errorCode: String? {
            (try? BatonJSON.decode(ErrorDocument.self, from: Data(body.utf8)))?.error.code
        }

        func decode<T: Decodable>(_ type: T.Type) throws -> T {
            do {
                return try BatonJSON.decode(type, from: Data(body.utf8))
            } catch {
                throw TestSupportError("cannot decode \(type) from \(status) '\(body)': \(error)")
            }
        }
    }

    /// `method path`, with an optional body file; `extra` are more curl flags (e.g.
    /// `--tls-max 1.2`).
    func call(
        _ method: String, _ path: String, upload: String? = nil, post: String? = nil, extra: [String] = [],
        tls: [String] = ["--tlsv1.3"]
    ) async throws -> Answer {
        try await offThePool { try blockingCall(method, path, upload: upload, post: post, extra: extra, tls: tls) }
    }

    private func blockingCall(
        _ method: String, _ path: String, upload: String?, post: String?, extra: [String], tls: [String]
    ) throws -> Answer {
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        let out = "\(scratch)/body-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: out) }
        var arguments = ["-sS", "--max-time", "120", "--cacert", caFile, "-o", out, "-w", "%{http_code}", "-H", "Expect:"] + tls
        if let credential { arguments += ["--cert", credential.certificate, "--key", credential.key] }
        if method == "HEAD" {
            arguments += ["--head"]
        } else {
            arguments += ["-X", method]
        }
        if let upload { arguments += ["--upload-file", upload] }
        if let post { arguments += ["--data-binary", "@\(post)", "-H", "Content-Type: application/json"] }
        arguments += extra
        arguments.append("https://127.0.0.1:\(port)\(path)")
        let result = try ProcessRunner.run("/usr/bin/curl", arguments)
        let body = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        return Answer(status: Int(result.stdout.trimmingCharacters(in: .whitespaces)) ?? 0, body: body, curlStatus: result.status, curlError: result.stderr)
    }

    func get(_ path: String) async throws -> Answer { try await call("GET", path) }

    /// An upload as curl makes it for a large file: `Expect: 100-continue`, the body held
    /// back until the agent answers 100 (or curl's own wait, set far beyond `--max-time`,
    /// runs out). Verbose, so the interim response shows in stderr.
    func uploadAskingFirst(_ artifact: AgentFixture.Artifact) async throws -> ProcessResult {
        var arguments = ["-sS", "-v", "--max-time", "20", "--expect100-timeout", "120", "--tlsv1.3", "--cacert", caFile,
                         "-o", "/dev/null", "-w", "%{http_code}", "-H", "Expect: 100-continue"]
        if let credential { arguments += ["--cert", credential.certificate, "--key", credential.key] }
        arguments += ["--upload-file", artifact.path, "https://127.0.0.1:\(port)/v1/artifacts/sha256/\(artifact.sha256)"]
        let command = arguments
        return try await offThePool { try ProcessRunner.run("/usr/bin/curl", command) }
    }

    func upload(_ artifact: AgentFixture.Artifact) async throws -> Answer {
        try await call("PUT", "/v1/artifacts/sha256/\(artifact.sha256)", upload: artifact.path)
    }

    func deploy(_ envelope: String) async throws -> Answer { try await call("POST", "/v1/deployments", post: envelope) }

    /// Posts an envelope that must be accepted (202) and returns the deployment id.
    func start(_ envelope: String) async throws -> String {
        let answer = try await deploy(envelope)
        guard answer.status == 202 else { throw TestSupportError("deployment not accepted: \(answer.status) \(answer.body)") }
        return try answer.decode(DeploymentAccepted.self).id
    }

    /// The event stream to its end.
    func events(_ id: String) async throws -> [DeploymentEvent] {
        let answer = try await get("/v1/deployments/\(id)/events")
        guard answer.status == 200 else { throw TestSupportError("events: \(answer.status) \(answer.body)") }
        return try answer.body.split(separator: "\n").map {
            try BatonJSON.decode(DeploymentEvent.self, from: Data($0.utf8))
        }
    }

    /// The last phase of a deployment's event stream, read to its end.
    func finalPhase(_ id: String) async throws -> DeploymentPhase? { try await events(id).last?.phase }

    func app(_ name: String = "web") async throws -> AppStatus { try await get("/v1/apps/\(name)").decode(AppStatus.self) }

    func isServing() async -> Bool { (try? await get("/v1/health").status) == 200 }

    /// The serial of the certificate the server presents to a new connection.
    func servedCertificateSerial() async throws -> String {
        try await offThePool { try blockingServedCertificateSerial() }
    }

    private func blockingServedCertificateSerial() throws -> String {
        var command = "\(OpenSSL.path) s_client -connect 127.0.0.1:\(port) -tls1_3 -CAfile '\(caFile)'"
        if let credential { command += " -cert '\(credential.certificate)' -key '\(credential.key)'" }
        command += " </dev/null 2>/dev/null | \(OpenSSL.path) x509 -noout -serial"
        let result = try ProcessRunner.run("/bin/sh", ["-c", command])
        guard result.status == 0 else { throw TestSupportError("s_client/x509 failed: \(result.stderr)") }
        return DaemonPKI.normalizedSerial(result.stdout)
    }

    /// Sends raw bytes over a TLS connection with `openssl s_client`, then closes it
    /// (`keepOpen`: waits for the server to close it).
    func raw(_ text: String, keepOpen: Bool = false) async throws -> ProcessResult {
        var arguments = ["s_client", "-connect", "127.0.0.1:\(port)", "-tls1_3", "-CAfile", caFile]
        if let credential { arguments += ["-cert", credential.certificate, "-key", credential.key] }
        if keepOpen { arguments.append("-ign_eof") }
        let command = arguments
        return try await offThePool { try ProcessRunner.run(OpenSSL.path, command, input: text) }
    }

    /// `GET /metrics` on the metrics listener, plain HTTP.
    static func metrics(port: Int) async throws -> String {
        let result = try await offThePool {
            try ProcessRunner.run("/usr/bin/curl", ["-sS", "--max-time", "30", "http://127.0.0.1:\(port)/metrics"])
        }
        guard result.status == 0 else { throw TestSupportError("metrics: \(result.stderr)") }
        return result.stdout
    }
}

/// The value of one Prometheus sample line (`name{labels} value`), if present.
func metricValue(_ exposition: String, _ series: String) -> Double? {
    for line in exposition.split(separator: "\n") where line.hasPrefix(series + " ") {
        return Double(line.dropFirst(series.count + 1).trimmingCharacters(in: .whitespaces))
    }
    return nil
}

