import BatonAgent
import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

/// Each phase's failure ends `failed` or `rolled_back` with the host on its previous
/// release and a record that says what happened.
@Suite struct DeploymentEngineTests {
    let fast = HealthPolicy(
        checks: [.command(.argv(["/bin/sh", "-c", "test -f HEALTHY"]))], timeout: BatonDuration(milliseconds: 500),
        interval: BatonDuration(milliseconds: 100), deadline: .seconds(1))

    /// A fixture with v1 live and healthy.
    func withV1(_ body: (AgentFixture, DeploymentEngine, AgentFixture.Artifact) async throws -> Void) async throws {
        let fixture = try AgentFixture()
        defer { fixture.remove() }
        let engine = try fixture.engine()
        let v1 = try fixture.artifact("v1", files: ["HEALTHY": "yes\n"])
        let record = try await engine.deploy(try fixture.envelope("v1", artifact: v1, health: fast), artifact: v1.path)
        #expect(record.phase == .succeeded, "\(record.events.map(\.message))")
        #expect(fixture.current() == "v1")
        try await body(fixture, engine, v1)
    }

    func expectPreviousLive(_ fixture: AgentFixture, _ v1: AgentFixture.Artifact, _ record: DeploymentRecord) {
        #expect(fixture.current() == "v1", "\(record.events.map(\.message))")
        #expect(fixture.currentMatches(v1))
        #expect(fixture.stagingEntries().isEmpty)
        #expect(record.finishedAt != nil)
        #expect(record.events.last?.phase == record.phase)
    }

    @Test func aDeploymentSucceedsAndIsRecorded() async throws {
        try await withV1 { fixture, engine, v1 in
            let v2 = try fixture.artifact("v2", files: ["HEALTHY": "yes\n", "bin/run": "#!/bin/sh\n"])
            let record = try await engine.deploy(
                try fixture.envelope(
                    "v2", artifact: v2,
                    hooks: Hooks(
                        prepare: Hook(command: .shell("echo prepared > PREPARED")),
                        activate: Hook(command: .shell("echo \"$BATON_APP $BATON_RELEASE $BATON_PHASE\" > ACTIVATED"))),
                    health: fast, bake: BatonDuration(milliseconds: 300)),
                artifact: v2.path)
            #expect(record.phase == .succeeded)
            #expect(fixture.current() == "v2")
            #expect(fixture.currentMatches(v2))
            let phases = record.timings.map(\.phase)
            #expect(phases == [.accepted, .fetching, .unpacking, .preparing, .switching, .activating, .checking, .baking])
            #expect(record.previousRelease == "v1")
            #expect(record.hooks.map(\.hook) == ["prepare", "activate"])
            #expect(try String(contentsOfFile: fixture.layout.currentLink("web") + "/ACTIVATED", encoding: .utf8) == "web v2 activate\n")
            #expect(record.healthAttempts.contains { $0.stage == "baking" && $0.passed })
            let status = try #require(await engine.appStatus("web"))
            #expect(status.current == "v2")
            #expect(status.previous == "v1")
            #expect(status.lastPhase == .succeeded)
            #expect(status.lastSerial == 2)
        }
    }

    /// A local file (`batond apply --artifact`) that is not the manifest's artifact is
    /// refused at submission, before the serial is used: v1 stays live, nothing is kept.
    /// (Uploads are checked as they are written: ArtifactCacheTests.)
    private func refusal(_ engine: DeploymentEngine, _ envelope: [UInt8], artifact: String) async -> RequestError? {
        do {
            _ = try await engine.submit(envelope: envelope, artifactFile: artifact)
            return nil
        } catch {
            return error
        }
    }

    @Test func digestMismatch() async throws {
        try await withV1 { fixture, engine, v1 in
            let v2 = try fixture.artifact("v2")
            let other = try fixture.artifact("other")
            let refused = await refusal(engine, try fixture.envelope("v2", artifact: v2, size: other.size).bytes, artifact: other.path)
            #expect(refused?.info.code == "digest_mismatch")
            #expect(fixture.current() == "v1")
            #expect(fixture.currentMatches(v1))
            #expect(await engine.appStatus("web")?.lastSerial == 1)
            #expect(!FileManager.default.fileExists(atPath: fixture.layout.artifact(v2.sha256)))
        }
    }

    @Test func sizeOverrun() async throws {
        try await withV1 { fixture, engine, v1 in
            let v2 = try fixture.artifact("v2", extraFiles: 50)
            let refused = await refusal(engine, try fixture.envelope("v2", artifact: v2, size: v2.size - 10).bytes, artifact: v2.path)
            #expect(refused?.info.code == "size_mismatch")
            #expect(fixture.current() == "v1")
            #expect(fixture.currentMatches(v1))
            #expect(await engine.appStatus("web")?.lastSerial == 1)
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: fixture.layout.artifactsTemporaryDirectory)
            #expect(leftovers.isEmpty)
        }
    }

    @Test func truncatedArchive() async throws {
        try await withV1 { fixture, engine, v1 in
            let v2 = try fixture.artifact("v2", extraFiles: 200)
            let bytes = try Data(contentsOf: URL(fileURLWithPath: v2.path))
            let cut = fixture.dir.child("cut.tar.gz")
            try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: cut))
            let truncated = try fixture.artifact(at: cut)
            let record = try await engine.deploy(try fixture.envelope("v2", artifact: truncated), artifact: cut)
            #expect(record.phase == .failed)
            #expect(["truncated_archive", "gzip_corrupt"].contains(record.error?.code ?? ""), "\(String(describing: record.error))")
            expectPreviousLive(fixture, v1, record)
            #expect(!fixture.releasesOnDisk().contains("v2"))
        }
    }

    @Test func prepareHookFails() async throws {
        try await withV1 { fixture, engine, v1 in
            let v2 = try fixture.artifact("v2")
            let record = try await engine.deploy(
                try fixture.envelope("v2", artifact: v2, hooks: Hooks(prepare: Hook(command: .shell("echo migration broke >&2; exit 3")))),
                artifact: v2.path)
            #expect(record.phase == .failed)
            #expect(record.error?.code == "prepare_failed")
            #expect(record.hooks.first?.exitStatus == 3)
            #expect(record.hooks.first?.stderrTail.contains("migration broke") == true)
            expectPreviousLive(fixture, v1, record)
            #expect(fixture.releasesOnDisk() == ["v1"])
        }
    }

    @Test func prepareHookHangingIsKilledWithItsChildren() async throws {
        try await withV1 { fixture, engine, v1 in
            let v2 = try fixture.artifact("v2")
            let pids = fixture.dir.child("pids")
            let script = "sleep 300 & echo $! >> \(pids); sh -c 'sleep 300 & echo $! >> \(pids); wait' & echo $$ >> \(pids); wait"
            let record = try await engine.deploy(
                try fixture.envelope("v2", artifact: v2, hooks: Hooks(prepare: Hook(command: .shell(script), timeout: .seconds(1)))),
                artifact: v2.path)
            #expect(record.phase == .failed)
            #expect(record.error?.code == "prepare_failed")
            #expect(record.hooks.first?.timedOut == true)
            expectPreviousLive(fixture, v1, record)
            let recorded = try String(contentsOfFile: pids, encoding: .utf8).split(separator: "\n").compactMap { Int32($0) }
            #expect(recorded.count >= 3)
            // Gone, or a zombie waiting for init to reap it: either way no longer running.
            try await Task.sleep(for: .milliseconds(200))
            for pid in recorded { #expect(!isRunning(pid), "process \(pid) survived the timeout") }
        }
    }

    @Test func activateFailsAndIsRolledBack() async throws {
        try await withV1 { fixture, engine, v1 in
            let v2 = try fixture.artifact("v2", files: ["HEALTHY": "yes\n"])
            let record = try await engine.deploy(
                try fixture.envelope("v2", artifact: v2, hooks: Hooks(activate: Hook(command: .argv(["/bin/false"]))), health: fast),
                artifact: v2.path)
            #expect(record.phase == .rolledBack)
            #expect(record.error?.code == "activate_failed")
            expectPreviousLive(fixture, v1, record)
            #expect(fixture.releasesOnDisk() == ["v1"])
            // The restored release was checked again.
            #expect(record.healthAttempts.contains { $0.stage == "rollback" && $0.passed && $0.release == "v1" })
        }
    }

    @Test func healthNeverPassingBeforeTheDeadline() async throws {
        try await withV1 { fixture, engine, v1 in
            let v2 = try fixture.artifact("v2")  // no HEALTHY file
            let record = try await engine.deploy(try fixture.envelope("v2", artifact: v2, health: fast), artifact: v2.path)
            #expect(record.phase == .rolledBack)
            #expect(record.error?.code == "health_check_failed")
            #expect(record.healthAttempts.filter { $0.stage == "checking" }.allSatisfy { !$0.passed })
            #expect(!record.healthAttempts.filter { $0.stage == "checking" }.isEmpty)
            expectPreviousLive(fixture, v1, record)
        }
    }

    @Test func healthFailingDuringBake() async throws {
        try await withV1 { fixture, engine, v1 in
            let v2 = try fixture.artifact("v2", files: ["HEALTHY": "yes\n"])
            // Healthy through the checking phase; the activate hook leaves a watcher that
            // removes the marker once the deployment record says the bake has begun (a
            // wait on the record, not a fixed sleep; it gives up after 20 s so that it
            // cannot outlive a failed test). The times stay generous: machines are busy.
            let patient = HealthPolicy(
                checks: fast.checks, timeout: .seconds(2), interval: BatonDuration(milliseconds: 200), deadline: .seconds(10))
            // The transition to baking is appended to the record's event log.
            let eventLog = fixture.layout.deploymentEvents("$BATON_DEPLOYMENT_ID")
            let watcher = """
                (for i in $(seq 400); do grep -Eq '"phase" *: *"baking"' "\(eventLog)" 2>/dev/null && break; sleep 0.05; done; \
                rm -f "$BATON_RELEASE_DIR/HEALTHY") >/dev/null 2>&1 &
                """
            let record = try await engine.deploy(
                try fixture.envelope(
                    "v2", artifact: v2, hooks: Hooks(activate: Hook(command: .shell(watcher))), health: patient, bake: .seconds(20)),
                artifact: v2.path)
            #expect(record.phase == .rolledBack)
            #expect(record.error?.code == "bake_failed")
            #expect(record.healthAttempts.contains { $0.stage == "baking" && !$0.passed })
            expectPreviousLive(fixture, v1, record)
        }
    }

    @Test func rollbackThatFailsIsLoud() async throws {
        let fixture = try AgentFixture()
        defer { fixture.remove() }
        let engine = try fixture.engine()
        // v1's own activate hook will fail when re-run, once v2 exists.
        let v1 = try fixture.artifact("v1")
        let guardFile = fixture.dir.child("v2-was-here")
        _ = try await engine.deploy(
            try fixture.envelope("v1", artifact: v1, hooks: Hooks(activate: Hook(command: .shell("test ! -e \(guardFile)")))),
            artifact: v1.path)
        let v2 = try fixture.artifact("v2")
        let record = try await engine.deploy(
            try fixture.envelope("v2", artifact: v2, hooks: Hooks(activate: Hook(command: .shell("touch \(guardFile); exit 1")))),
            artifact: v2.path)
        #expect(record.phase == .rollbackFailed)
        #expect(record.error?.code == "rollback_failed")
        #expect(fixture.current() == "v1")
    }

    @Test func oneDeploymentPerAppAndIdenticalResendsAnswerTheExistingOne() async throws {
        try await withV1 { fixture, engine, _ in
            let v2 = try fixture.artifact("v2")
            let slow = try fixture.envelope("v2", artifact: v2, hooks: Hooks(prepare: Hook(command: .shell("sleep 1"))))
            let first = try await engine.submit(envelope: slow.bytes, artifactFile: v2.path)
            let again = try await engine.submit(envelope: slow.bytes, artifactFile: v2.path)
            #expect(again.existing)
            #expect(again.id == first.id)
            let v3 = try fixture.artifact("v3")
            let other = try fixture.envelope("v3", artifact: v3)
            await #expect(throws: RequestError.self) { try await engine.submit(envelope: other.bytes, artifactFile: v3.path) }
            do {
                _ = try await engine.submit(envelope: other.bytes, artifactFile: v3.path)
            } catch let error as RequestError {
                #expect(error.status == 409)
                #expect(error.info.code == "deployment_in_progress")
            }
            #expect(await engine.wait(for: first.id)?.phase == .succeeded)
        }
    }

    @Test func refusalsLeaveTheHostAlone() async throws {
        try await withV1 { fixture, engine, v1 in
            let v2 = try fixture.artifact("v2")
            let stale = try fixture.envelope("v2", artifact: v2, serial: 1)
            do {
                _ = try await engine.submit(envelope: stale.bytes, artifactFile: v2.path)
                Issue.record("a replayed serial was accepted")
            } catch let error as RequestError {
                #expect(error.info.code == "serial_conflict")
            }
            let notForUs = try fixture.envelope("v2", artifact: v2, targets: ["someone-else"])
            do {
                _ = try await engine.submit(envelope: notForUs.bytes, artifactFile: v2.path)
                Issue.record("an untargeted manifest was accepted")
            } catch let error as RequestError {
                #expect(error.info.code == "not_targeted")
                #expect(error.status == 403)
            }
            #expect(fixture.current() == "v1")
            #expect(fixture.currentMatches(v1))
        }
    }

    @Test func returningToAnInstalledReleaseNeedsNoArtifactAndRetentionKeepsKeep() async throws {
        try await withV1 { fixture, engine, _ in
            for release in ["v2", "v3", "v4"] {
                let artifact = try fixture.artifact(release, files: ["HEALTHY": "yes\n"])
                let record = try await engine.deploy(
                    try fixture.envelope(release, artifact: artifact, health: fast, keep: 3), artifact: artifact.path)
                #expect(record.phase == .succeeded)
            }
            #expect(fixture.releasesOnDisk() == ["v2", "v3", "v4"])
            // Back to v3: on disk, so no artifact file is given and none is fetched.
            let v3 = try fixture.artifact(at: try #require(
                try FileManager.default.contentsOfDirectory(atPath: fixture.dir.path).first { $0.hasPrefix("v3-") && $0.hasSuffix(".tar.gz") }
                    .map { fixture.dir.child($0) }))
            let back = try await engine.deploy(try fixture.envelope("v3", artifact: v3, health: fast, keep: 3), artifact: nil)
            #expect(back.phase == .succeeded, "\(back.events.map(\.message))")
            #expect(back.isRollback)
            #expect(fixture.current() == "v3")
        }
    }

    @Test func auditLogRecordsEverythingAndDetectsAOneByteChange() async throws {
        try await withV1 { fixture, engine, _ in
            let v2 = try fixture.artifact("v2")
            _ = try? await engine.submit(envelope: try fixture.envelope("v2", artifact: v2, serial: 1).bytes, artifactFile: nil)
            #expect(AuditVerifier.verify(dataDirectory: fixture.dataDirectory) == .intact(lines: 3))
            let log = fixture.layout.auditLog
            let text = try String(contentsOfFile: log, encoding: .utf8)
            #expect(text.contains("\"event\":\"accepted\""))
            #expect(text.contains("\"event\":\"refused\""))
            #expect(text.contains("\"result\":\"serial_conflict\""))
            #expect(text.contains(fixture.key.keyid))
            // Change one byte of the second line.
            var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: log)))
            let secondLine = bytes.firstIndex(of: 0x0A)! + 1
            let at = bytes[secondLine...].firstIndex(of: UInt8(ascii: "1"))!
            bytes[at] = UInt8(ascii: "2")
            try Data(bytes).write(to: URL(fileURLWithPath: log))
            guard case .broken(let line, _) = AuditVerifier.verify(dataDirectory: fixture.dataDirectory) else {
                Issue.record("a changed audit line went unnoticed")
                return
            }
            #expect(line == 2)
        }
    }
}

/// True while `pid` exists and is not a zombie.
func isRunning(_ pid: Int32) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return false }
    let state = stat[stat.index(close, offsetBy: 2)]
    return state != "Z" && state != "X"
}
