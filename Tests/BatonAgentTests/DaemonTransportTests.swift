import BatonAgent
import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

/// Who may talk to the agent: mutual TLS 1.3 with the fleet CA only, and a controller
/// identity in the client certificate. Plus the limits on slow and idle connections.
@Suite("batond run: TLS and connections") struct DaemonTransportTests {
    @Test(.timeLimit(.minutes(3)))
    func onlyControllersOfTheFleetOverTLS13() async throws {
        let host = try await DaemonHost.make()
        defer { host.remove() }
        let daemon = try await host.start()
        defer { daemon.stop() }
        let controller = host.client(daemon)
        #expect(await controller.isServing())

        // No client certificate: the handshake fails, no HTTP answer.
        let anonymous = try await APIClient(port: daemon.apiPort, caFile: host.pki.caFile, credential: nil, scratch: host.dir.child("curl"))
            .get("/v1/health")
        #expect(anonymous.status == 0)
        #expect(anonymous.curlStatus != 0)

        // A controller certificate from a CA this agent does not trust: refused in the handshake.
        let foreign = try await host.client(daemon, as: host.pki.foreignController).get("/v1/health")
        #expect(foreign.status == 0)
        #expect(foreign.curlStatus != 0)

        // TLS 1.2, even with a good certificate: refused.
        let old = try await controller.call("GET", "/v1/health", tls: ["--tlsv1.2", "--tls-max", "1.2"])
        #expect(old.status == 0)
        #expect(old.curlStatus != 0)

        // An agent's certificate from the right CA: the handshake succeeds, the request is refused.
        let neighbour = try await host.client(daemon, as: host.pki.otherAgent).get("/v1/apps")
        #expect(neighbour.status == 403)
        #expect(neighbour.errorCode == "forbidden_identity")
        #expect(neighbour.body.contains("baton://agent/host-9"))
        let neighbourDeploy = try await host.client(daemon, as: host.pki.otherAgent).call("POST", "/v1/deployments", post: host.configPath)
        #expect(neighbourDeploy.status == 403)

        // The agent's own certificate names an agent too.
        #expect(try await host.client(daemon, as: host.pki.agent).get("/v1/health").status == 403)

        #expect(await controller.isServing())
        try await daemon.waitForLine(containing: "msg=\"tls handshake refused\"")
        let exposition = try await APIClient.metrics(port: daemon.metricsPort)
        #expect((metricValue(exposition, #"baton_requests_refused_total{code="tls_handshake"}"#) ?? 0) >= 3)
        #expect(metricValue(exposition, #"baton_requests_refused_total{code="forbidden_identity"}"#) == 3)
        #expect(metricValue(exposition, "baton_tls_certificate_expiry_timestamp_seconds").map { $0 > Date().timeIntervalSince1970 } == true)
    }

    @Test(.timeLimit(.minutes(2)))
    func idleAndSlowConnectionsAreClosedAndHeadsCapped() async throws {
        let host = try await DaemonHost.make()
        defer { host.remove() }
        let daemon = try await host.start(["--idle-timeout", "1"])
        defer { daemon.stop() }
        let api = host.client(daemon)

        // Connected, then silent: the agent closes the connection (openssl's -ign_eof would
        // otherwise keep it open for ever).
        let started = ContinuousClock.now
        _ = try await api.raw("", keepOpen: true)
        // Half a request head, never finished.
        _ = try await api.raw("GET /v1/health HTTP/1.1\r\nHost: agent\r\n", keepOpen: true)
        // A body that stops arriving.
        _ = try await api.raw(
            "PUT /v1/artifacts/sha256/\(String(repeating: "cd", count: 32)) HTTP/1.1\r\nHost: agent\r\nContent-Length: 1000\r\n\r\nabc",
            keepOpen: true)
        #expect(ContinuousClock.now - started < .seconds(30))
        #expect(await api.isServing())

        // Request heads are capped: one oversized header field is a 400, not an allocation.
        let oversized = try await api.call("GET", "/v1/health", extra: ["-H", "X-Padding: " + String(repeating: "p", count: 20 << 10)])
        #expect(oversized.status == 400)
        #expect(await api.isServing())
    }

    @Test(.timeLimit(.minutes(2)))
    func anUploadCutShortLeavesNothing() async throws {
        let host = try await DaemonHost.make(limits: "limits:\n  maxConcurrentUploads: 1")
        defer { host.remove() }
        let daemon = try await host.start()
        defer { daemon.stop() }
        let api = host.client(daemon)
        let v1 = try await host.artifact("v1", extraFiles: 200)

        let head = "PUT /v1/artifacts/sha256/\(v1.sha256) HTTP/1.1\r\nHost: agent\r\nContent-Length: \(v1.size)\r\n\r\n"
        // The client goes away after a few bytes, twice: each upload slot is given back.
        for attempt in 1...2 {
            _ = try await api.raw(head + String(repeating: "x", count: 100))
            try await daemon.waitForOccurrences(attempt, of: "msg=\"artifact upload cut short\"")
        }
        #expect(try await api.call("HEAD", "/v1/artifacts/sha256/\(v1.sha256)").status == 404)
        func files(_ directory: String) -> [String] { (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] }
        #expect(files(host.fixture.layout.artifactsDirectory).isEmpty)
        #expect(files(host.fixture.layout.root + "/artifacts/tmp").isEmpty)

        let stored = try await api.upload(v1)
        #expect(stored.status == 201, "\(stored.body)")
        #expect(try await api.call("HEAD", "/v1/artifacts/sha256/\(v1.sha256)").status == 200)
    }

    @Test(.timeLimit(.minutes(2)))
    func expectContinueIsAnsweredAndRefusalsStillCome() async throws {
        let host = try await DaemonHost.make()
        defer { host.remove() }
        let daemon = try await host.start()
        defer { daemon.stop() }
        let api = host.client(daemon)
        let v1 = try await host.artifact("v1", extraFiles: 200)
        // curl waits up to 120 s for "100 Continue" but gives up after 20: only an agent
        // that answers it lets the upload through.
        let asked = try await api.uploadAskingFirst(v1)
        #expect(asked.status == 0, "curl: \(asked.stderr)")
        #expect(asked.stdout == "201", "\(asked.stdout) \(asked.stderr)")
        #expect(asked.stderr.contains("< HTTP/1.1 100 Continue"), "\(asked.stderr)")
        #expect(try await api.call("HEAD", "/v1/artifacts/sha256/\(v1.sha256)").status == 200)
        // A refusal is still the final answer: bytes that are not the digest they name.
        let wrong = AgentFixture.Artifact(path: v1.path, sha256: String(repeating: "a", count: 64), size: v1.size, files: v1.files)
        let refused = try await api.uploadAskingFirst(wrong)
        #expect(refused.stdout == "422", "\(refused.stdout) \(refused.stderr)")
        #expect(try await api.call("HEAD", "/v1/artifacts/sha256/\(wrong.sha256)").status == 404)
    }
}
