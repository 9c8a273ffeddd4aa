import BatonAgent
import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

/// `batond run` as a controller sees it: real processes on 127.0.0.1, certificates from
/// `baton pki`, curl as the client.
@Suite("batond run: the API") struct DaemonAPITests {
    @Test(.timeLimit(.minutes(4)))
    func aDeploymentEndToEndThenAFailingHealthCheckRollsBack() async throws {
        let host = try await DaemonHost.make()
        defer { host.remove() }
        let daemon = try await host.start()
        defer { daemon.stop() }
        let api = host.client(daemon)

        let health = try await api.get("/v1/health").decode(AgentHealth.self)
        #expect(health.hostID == "host-1")
        #expect(health.environment == "staging")
        #expect(try await api.get("/v1/apps").decode(AppList.self).apps.isEmpty)

        // Upload: absent, stored, present, not needed again.
        let v1 = try await host.artifact("v1", files: ["HEALTHY": "yes\n"])
        #expect(try await api.call("HEAD", "/v1/artifacts/sha256/\(v1.sha256)").status == 404)
        let stored = try await api.upload(v1)
        #expect(stored.status == 201, "\(stored.body)")
        #expect(try stored.decode(ArtifactReceipt.self) == ArtifactReceipt(sha256: v1.sha256, size: v1.size, existing: false))
        let present = try await api.call("HEAD", "/v1/artifacts/sha256/\(v1.sha256)")
        #expect(present.status == 200)
        #expect(present.body.lowercased().contains("content-length: \(v1.size)"), "\(present.body)")
        let again = try await api.upload(v1)
        #expect(again.status == 200)
        #expect(try again.decode(ArtifactReceipt.self).existing)

        // Deploy, follow the events to the end, read the record and the app.
        let envelope = try host.envelope(
            "v1", artifact: v1, hooks: Hooks(activate: Hook(command: .shell("echo activated > ACTIVATED"))),
            health: DaemonHost.fastHealth)
        let posted = try await api.deploy(envelope)
        #expect(posted.status == 202, "\(posted.body)")
        let accepted = try posted.decode(DeploymentAccepted.self)
        #expect(!accepted.existing)
        let events = try await api.events(accepted.id)
        #expect(events.map(\.sequence) == Array(1...events.count))
        #expect(events.last?.phase == .succeeded)
        #expect(Set(events.map(\.phase)).isSuperset(of: [.accepted, .fetching, .unpacking, .switching, .activating, .checking, .succeeded]))
        let record = try await api.get("/v1/deployments/\(accepted.id)").decode(DeploymentRecord.self)
        #expect(record.phase == .succeeded)
        #expect(record.events == events)
        #expect(record.hostID == "host-1")
        #expect(record.signers.count == 2)

        // An identical resend answers 200 with the same deployment.
        let resent = try await api.deploy(envelope)
        #expect(resent.status == 200)
        #expect(try resent.decode(DeploymentAccepted.self) == DeploymentAccepted(id: accepted.id, phase: .succeeded, existing: true))

        var status = try await api.app()
        #expect(status.current == "v1")
        #expect(status.lastPhase == .succeeded)
        #expect(status.activeDeploymentID == nil)
        #expect(host.fixture.current() == "v1")
        #expect(host.fixture.currentMatches(v1))
        #expect(try await api.get("/v1/apps").decode(AppList.self).apps.map(\.app) == ["web"])

        // v2 never becomes healthy: rolled back over the API, v1 live again.
        let v2 = try await host.artifact("v2")
        #expect(try await api.upload(v2).status == 201)
        let failing = try await api.deploy(try host.envelope("v2", artifact: v2, health: DaemonHost.fastHealth))
        #expect(failing.status == 202, "\(failing.body)")
        let failingID = try failing.decode(DeploymentAccepted.self).id
        let failingEvents = try await api.events(failingID)
        #expect(failingEvents.last?.phase == .rolledBack)
        let failed = try await api.get("/v1/deployments/\(failingID)").decode(DeploymentRecord.self)
        #expect(failed.phase == .rolledBack)
        #expect(failed.error?.code == "health_check_failed")
        status = try await api.app()
        #expect(status.current == "v1")
        #expect(status.lastPhase == .rolledBack)
        #expect(host.fixture.current() == "v1")
        #expect(host.fixture.currentMatches(v1))

        // Metrics, on the plain-HTTP loopback listener, follow what happened.
        let exposition = try await eventually {
            let text = try await APIClient.metrics(port: daemon.metricsPort)
            return metricValue(text, #"baton_deployments_total{app="web",result="rolled_back"}"#) == 1 ? text : nil
        }
        #expect(metricValue(exposition, #"baton_deployments_total{app="web",result="succeeded"}"#) == 1)
        #expect(metricValue(exposition, #"baton_app_release_info{app="web",release="v1"}"#) == 1)
        #expect(!exposition.contains(#"baton_app_release_info{app="web",release="v2"}"#))
        #expect((metricValue(exposition, #"baton_health_check_failures_total{app="web",stage="checking"}"#) ?? 0) >= 1)
        #expect(metricValue(exposition, "baton_artifact_received_bytes_total") == Double(v1.size + v2.size))
        #expect(exposition.contains(#"baton_deployment_phase_duration_seconds_count{app="web",phase="unpacking"}"#))
        #expect(exposition.contains(#"baton_agent_info{host="host-1",environment="staging",version=""#))
    }

    /// Every refusal: its status and code, the host still on its previous release, the
    /// daemon still serving.
    @Test(.timeLimit(.minutes(4)))
    func refusalsLeaveTheHostOnItsRelease() async throws {
        let host = try await DaemonHost.make(threshold: 2, limits: "limits:\n  maxArtifactSize: 1MiB")
        defer { host.remove() }
        let daemon = try await host.start()
        defer { daemon.stop() }
        let api = host.client(daemon)
        let fixture = host.fixture

        let v1 = try await host.artifact("v1", files: ["HEALTHY": "yes\n"])
        #expect(try await api.upload(v1).status == 201)
        let first = try await api.deploy(try host.envelope("v1", artifact: v1, serial: 5))
        #expect(first.status == 202, "\(first.body)")
        #expect(try await api.events(try first.decode(DeploymentAccepted.self).id).last?.phase == .succeeded)

        let v2 = try await host.artifact("v2", files: ["HEALTHY": "yes\n"])
        #expect(try await api.upload(v2).status == 201)

        func expectRefused(
            _ answer: APIClient.Answer, _ status: Int, _ code: String, sourceLocation: SourceLocation = #_sourceLocation
        ) async throws {
            #expect(answer.status == status, "\(answer.body)", sourceLocation: sourceLocation)
            #expect(answer.errorCode == code, "\(answer.body)", sourceLocation: sourceLocation)
            let app = try await api.app()
            #expect(app.current == "v1", sourceLocation: sourceLocation)
            #expect(app.lastSerial == 5, sourceLocation: sourceLocation)
            #expect(fixture.current() == "v1", sourceLocation: sourceLocation)
            #expect(fixture.currentMatches(v1), sourceLocation: sourceLocation)
        }

        try await expectRefused(await api.deploy(try host.envelope("v2", artifact: v2, serial: 6, tamper: true)), 403, "signature_invalid")
        try await expectRefused(await api.deploy(try host.envelope("v2", artifact: v2, serial: 6, signers: [SigningKey()])), 403, "untrusted_key")
        try await expectRefused(await api.deploy(try host.envelope("v2", artifact: v2, serial: 6, signers: [fixture.key])), 403, "threshold_not_met")
        try await expectRefused(await api.deploy(try host.envelope("v2", artifact: v2, serial: 3)), 409, "stale_serial")
        try await expectRefused(await api.deploy(try host.envelope("v2", artifact: v2, serial: 5)), 409, "serial_conflict")
        try await expectRefused(
            await api.deploy(try host.envelope("v2", artifact: v2, serial: 6, expiresAt: Date().addingTimeInterval(-10))), 403, "expired")
        try await expectRefused(
            await api.deploy(try host.envelope("v2", artifact: v2, serial: 6, environment: "production")), 403, "wrong_environment")
        try await expectRefused(await api.deploy(try host.envelope("v2", artifact: v2, serial: 6, targets: ["host-2"])), 403, "not_targeted")

        // Bodies: oversized, not an envelope.
        let big = host.dir.child("big.json")
        try Data(repeating: 0x20, count: 200 << 10).write(to: URL(fileURLWithPath: big))
        try await expectRefused(await api.deploy(big), 413, "too_large")
        let junk = host.dir.child("junk.json")
        try Data("this is not an envelope".utf8).write(to: URL(fileURLWithPath: junk))
        try await expectRefused(await api.deploy(junk), 400, "malformed")

        // Uploads: bytes that do not match the digest are not kept; over the size cap.
        let wrongDigest = String(repeating: "ab", count: 32)
        try await expectRefused(await api.call("PUT", "/v1/artifacts/sha256/\(wrongDigest)", upload: v2.path), 422, "digest_mismatch")
        #expect(try await api.call("HEAD", "/v1/artifacts/sha256/\(wrongDigest)").status == 404)
        #expect(!FileManager.default.fileExists(atPath: fixture.layout.artifact(wrongDigest)))
        let huge = host.dir.child("huge.bin")
        try Data(repeating: 0x61, count: 2 << 20).write(to: URL(fileURLWithPath: huge))
        let hugeDigest = Digest.sha256Hex(try Data(contentsOf: URL(fileURLWithPath: huge)))
        try await expectRefused(await api.call("PUT", "/v1/artifacts/sha256/\(hugeDigest)", upload: huge), 413, "artifact_too_large")
        try await expectRefused(await api.call("PUT", "/v1/artifacts/sha256/NOT-A-DIGEST", upload: v2.path), 404, "not_found")

        // A name that does not exist, over the real transport (every route and name is
        // covered in-process by InProcessAPITests).
        try await expectRefused(await api.get("/v1/deployments/web-99"), 404, "not_found")

        // A second deployment while one runs: 409, and the first one is not disturbed.
        let gate = host.dir.child("gate-prepare")
        let held = try await api.deploy(try host.envelope("v2", artifact: v2, hooks: Hooks(prepare: host.gatedHook(gate)), serial: 6))
        #expect(held.status == 202, "\(held.body)")
        let heldID = try held.decode(DeploymentAccepted.self).id
        try await daemon.waitForLine(containing: "baton.deployment.id=\(heldID) ", "baton.phase=preparing")
        let second = try await api.deploy(try host.envelope("v3", artifact: v2, serial: 7))
        #expect(second.status == 409)
        #expect(second.errorCode == "deployment_in_progress")
        #expect(try await api.app().current == "v1")
        #expect(try await api.app().activeDeploymentID == heldID)
        FileManager.default.createFile(atPath: gate, contents: nil)
        #expect(try await api.events(heldID).last?.phase == .succeeded)
        #expect(try await api.app().current == "v2")
        #expect(await api.isServing())

        let exposition = try await APIClient.metrics(port: daemon.metricsPort)
        #expect(metricValue(exposition, #"baton_requests_refused_total{code="signature_invalid"}"#) == 1)
        #expect(metricValue(exposition, #"baton_requests_refused_total{code="deployment_in_progress"}"#) == 1)
    }
}

/// Polls `probe` (a wait on a condition, not a fixed sleep) until it yields a value.
func eventually<T>(timeout: Duration = .seconds(30), _ probe: () async throws -> T?) async throws -> T {
    let deadline = ContinuousClock.now + timeout
    while true {
        if let value = try await probe() { return value }
        guard ContinuousClock.now < deadline else { throw TestSupportError("condition not met within \(timeout)") }
        try await Task.sleep(for: .milliseconds(50))
    }
}
