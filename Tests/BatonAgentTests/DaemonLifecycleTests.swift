import BatonAgent
import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

/// Signals: SIGHUP reloads TLS and trust, SIGTERM stops gracefully, SIGKILL at the
/// worst moment leaves a host the next start makes consistent and truthful.
@Suite("batond run: signals and restarts") struct DaemonLifecycleTests {
    @Test(.timeLimit(.minutes(3)))
    func sighupReloadsTheCertificateAndABrokenFileKeepsTheOld() async throws {
        let host = try await DaemonHost.make()
        defer { host.remove() }
        let daemon = try await host.start()
        defer { daemon.stop() }
        let api = host.client(daemon)
        let agentCertificate = host.agentCertificatePath
        let original = try await offThePool { try DaemonPKI.serial(ofCertificate: agentCertificate) }
        #expect(try await api.servedCertificateSerial() == original)

        // A renewed certificate (and key): new connections see it, no restart.
        let pki = host.pki, renewedDirectory = host.dir.child("renewed")
        try await offThePool { try pki.issueAgent(into: renewedDirectory) }
        let renewed = DaemonPKI.Credential(
            certificate: host.dir.child("renewed/host-1.pem"), key: host.dir.child("renewed/host-1.key"))
        let renewedSerial = try await offThePool { try DaemonPKI.serial(ofCertificate: renewed.certificate) }
        #expect(renewedSerial != original)
        try host.installAgentCertificate(from: renewed)
        var mark = daemon.logCount
        daemon.signal(SIGHUP)
        try await daemon.waitForLine(containing: "msg=\"reload finished\"", "baton.reload.tls=ok", from: mark)
        #expect(try await api.servedCertificateSerial() == renewedSerial)
        #expect(await api.isServing())

        // A broken certificate file and a broken trust policy: both kept, the log says why.
        try Data("-----BEGIN CERTIFICATE-----\nnot base64\n".utf8).write(to: URL(fileURLWithPath: host.agentCertificatePath))
        let trust = try String(contentsOfFile: host.fixture.dir.child("trust.yaml"), encoding: .utf8)
        try "keys: [".write(toFile: host.fixture.dir.child("trust.yaml"), atomically: false, encoding: .utf8)
        mark = daemon.logCount
        daemon.signal(SIGHUP)
        let failed = try await daemon.waitForLine(containing: "msg=\"tls reload failed; keeping the previous certificate, key and CA\"", from: mark)
        #expect(failed.contains("baton.code=tls_unreadable"))
        try await daemon.waitForLine(containing: "msg=\"trust policy reload failed; keeping the previous policy\"", from: mark)
        try await daemon.waitForLine(containing: "baton.reload.tls=kept_old", "baton.reload.trust=kept_old", from: mark)
        #expect(try await api.servedCertificateSerial() == renewedSerial)

        // A certificate for another host is refused too.
        try host.installAgentCertificate(from: host.pki.otherAgent)
        mark = daemon.logCount
        daemon.signal(SIGHUP)
        let mismatch = try await daemon.waitForLine(containing: "msg=\"tls reload failed", from: mark)
        #expect(mismatch.contains("baton.code=tls_identity_mismatch"))
        #expect(try await api.servedCertificateSerial() == renewedSerial)

        // The renewed certificate with a key that is not its own: refused.
        try Data(contentsOf: URL(fileURLWithPath: renewed.certificate)).write(to: URL(fileURLWithPath: host.agentCertificatePath))
        try Data(contentsOf: URL(fileURLWithPath: host.pki.agent.key)).write(to: URL(fileURLWithPath: host.agentKeyPath))
        mark = daemon.logCount
        daemon.signal(SIGHUP)
        let wrongKey = try await daemon.waitForLine(containing: "msg=\"tls reload failed", from: mark)
        #expect(wrongKey.contains("baton.code=tls_invalid"))
        #expect(try await api.servedCertificateSerial() == renewedSerial)
        try host.installAgentCertificate(from: renewed)

        // The old trust policy still verifies deployments.
        try trust.write(toFile: host.fixture.dir.child("trust.yaml"), atomically: false, encoding: .utf8)
        let v1 = try await host.artifact("v1")
        #expect(try await api.upload(v1).status == 201)
        let posted = try await api.deploy(try host.envelope("v1", artifact: v1))
        #expect(posted.status == 202, "\(posted.body)")
        #expect(try await api.events(try posted.decode(DeploymentAccepted.self).id).last?.phase == .succeeded)
        let exposition = try await APIClient.metrics(port: daemon.metricsPort)
        #expect(metricValue(exposition, #"baton_reloads_total{what="tls",result="ok"}"#) == 1)
        #expect(metricValue(exposition, #"baton_reloads_total{what="tls",result="failed"}"#) == 3)

        // A new fleet CA: from then on the old CA's controllers fail the handshake and the
        // new CA's are served.
        let foreignCA = "\(host.pki.dir)/foreign-ca/ca.pem"
        try Data(contentsOf: URL(fileURLWithPath: foreignCA)).write(to: URL(fileURLWithPath: host.fixture.dir.child("tls/ca.pem")))
        mark = daemon.logCount
        daemon.signal(SIGHUP)
        try await daemon.waitForLine(containing: "msg=\"reload finished\"", "baton.reload.tls=ok", from: mark)
        let oldCAServed = await api.isServing()
        #expect(!oldCAServed)
        #expect(await host.client(daemon, as: host.pki.foreignController).isServing())
    }

    @Test(.timeLimit(.minutes(4)))
    func sigkillDuringADeploymentThenRestart() async throws {
        let host = try await DaemonHost.make()
        defer { host.remove() }
        var daemon = try await host.start()
        defer { daemon.stop() }
        var api = host.client(daemon)
        let v1 = try await host.artifact("v1", files: ["HEALTHY": "yes\n"])
        #expect(try await api.upload(v1).status == 201)
        #expect(try await api.events(try await api.deploy(try host.envelope("v1", artifact: v1)).decode(DeploymentAccepted.self).id).last?.phase == .succeeded)

        // Killed after the switch (the activate hook is running): rolled back at restart.
        let activateGate = host.dir.child("gate-activate")
        defer { FileManager.default.createFile(atPath: activateGate, contents: nil) }
        let v2 = try await host.artifact("v2", files: ["HEALTHY": "yes\n"])
        #expect(try await api.upload(v2).status == 201)
        let afterSwitch = try await api.deploy(
            try host.envelope("v2", artifact: v2, hooks: Hooks(activate: host.gatedHook(activateGate)), health: DaemonHost.fastHealth))
        let afterSwitchID = try afterSwitch.decode(DeploymentAccepted.self).id
        try await daemon.waitForLine(containing: "baton.deployment.id=\(afterSwitchID) ", "baton.phase=activating")
        #expect(host.fixture.current() == "v2")
        await daemon.kill9()

        daemon = try await host.start()
        api = host.client(daemon)
        var record = try await api.get("/v1/deployments/\(afterSwitchID)").decode(DeploymentRecord.self)
        #expect(record.phase == .rolledBack, "\(record.events.map(\.message))")
        #expect(record.reconciliation != nil)
        #expect(record.error?.code == "interrupted")
        var status = try await api.app()
        #expect(status.current == "v1")
        #expect(status.activeDeploymentID == nil)
        #expect(host.fixture.current() == "v1")
        #expect(host.fixture.currentMatches(v1))

        // Killed before the switch (the prepare hook is running): failed, nothing switched.
        let prepareGate = host.dir.child("gate-prepare")
        defer { FileManager.default.createFile(atPath: prepareGate, contents: nil) }
        let v3 = try await host.artifact("v3")
        #expect(try await api.upload(v3).status == 201)
        let beforeSwitch = try await api.deploy(try host.envelope("v3", artifact: v3, hooks: Hooks(prepare: host.gatedHook(prepareGate))))
        let beforeSwitchID = try beforeSwitch.decode(DeploymentAccepted.self).id
        try await daemon.waitForLine(containing: "baton.deployment.id=\(beforeSwitchID) ", "baton.phase=preparing")
        await daemon.kill9()

        daemon = try await host.start()
        api = host.client(daemon)
        record = try await api.get("/v1/deployments/\(beforeSwitchID)").decode(DeploymentRecord.self)
        #expect(record.phase == .failed, "\(record.events.map(\.message))")
        #expect(record.reconciliation != nil)
        status = try await api.app()
        #expect(status.current == "v1")
        #expect(status.lastPhase == .failed)
        #expect(host.fixture.current() == "v1")
        #expect(host.fixture.currentMatches(v1))
        #expect(host.fixture.stagingEntries().isEmpty)

        // And the host deploys again.
        let v4 = try await host.artifact("v4", files: ["HEALTHY": "yes\n"])
        #expect(try await api.upload(v4).status == 201)
        #expect(try await api.events(try await api.deploy(try host.envelope("v4", artifact: v4)).decode(DeploymentAccepted.self).id).last?.phase == .succeeded)
        #expect(host.fixture.current() == "v4")
    }

    @Test(.timeLimit(.minutes(3)))
    func sigtermStopsGracefully() async throws {
        let host = try await DaemonHost.make()
        defer { host.remove() }
        var daemon = try await host.start(["--shutdown-grace", "1"])
        defer { daemon.stop() }
        var api = host.client(daemon)
        let v1 = try await host.artifact("v1")
        #expect(try await api.upload(v1).status == 201)
        #expect(try await api.events(try await api.deploy(try host.envelope("v1", artifact: v1)).decode(DeploymentAccepted.self).id).last?.phase == .succeeded)

        // Idle: SIGTERM ends it at once, exit status 0.
        daemon.signal(SIGTERM)
        #expect(await daemon.waitForExit(timeout: 20) == 0)
        #expect(daemon.log.contains { $0.contains("msg=\"batond stopped\"") })

        // A deployment that does not end within the grace: left for reconciliation.
        daemon = try await host.start(["--shutdown-grace", "1"])
        api = host.client(daemon)
        let gate = host.dir.child("gate-prepare")
        defer { FileManager.default.createFile(atPath: gate, contents: nil) }
        let v2 = try await host.artifact("v2")
        #expect(try await api.upload(v2).status == 201)
        let held = try await api.deploy(try host.envelope("v2", artifact: v2, hooks: Hooks(prepare: host.gatedHook(gate))))
        let heldID = try held.decode(DeploymentAccepted.self).id
        try await daemon.waitForLine(containing: "baton.deployment.id=\(heldID) ", "baton.phase=preparing")
        daemon.signal(SIGTERM)
        #expect(await daemon.waitForExit(timeout: 30) == 0)
        #expect(daemon.log.contains { $0.contains("msg=\"deployment left for reconciliation at the next start\"") && $0.contains("baton.deployment.id=\(heldID) ") })
        #expect(host.fixture.current() == "v1")

        daemon = try await host.start()
        api = host.client(daemon)
        let record = try await api.get("/v1/deployments/\(heldID)").decode(DeploymentRecord.self)
        #expect(record.phase == .failed)
        #expect(record.error?.code == "interrupted")
        #expect(try await api.app().current == "v1")
    }

    @Test func runRefusesAConfigurationWithoutTLS() async throws {
        let fixture = try AgentFixture()
        defer { fixture.remove() }
        let config = fixture.configPath
        let result = try await offThePool { try ProcessRunner.runTool("batond", ["run", "--config", config]) }
        #expect(result.status == 2)
        #expect(result.stderr.contains("error: tls_not_configured:"))
    }
}
