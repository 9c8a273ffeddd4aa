import BatonAgent
import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

/// Unreadable state is reported (`state_corrupt`, the file named), never taken for an
/// app that was never deployed; the app's files are left as they are and its deployments
/// refused; `batond state rebuild` brings it back without deleting anything.
@Suite("Corrupt state speaks up") struct CorruptStateTests {
    /// A host with v1 then v2 deployed (so v1 is held and previous).
    static func deployedHost() async throws -> AgentFixture {
        let fixture = try AgentFixture()
        let engine = try fixture.engine()
        for release in ["v1", "v2"] {
            let artifact = try fixture.artifact(release)
            let record = try await engine.deploy(try fixture.envelope(release, artifact: artifact), artifact: artifact.path)
            try #require(record.phase == .succeeded, "\(release): \(String(describing: record.error))")
        }
        return fixture
    }

    static func batond(_ arguments: [String]) throws -> ProcessResult {
        try ProcessRunner.run(ProcessRunner.executable("batond"), arguments)
    }

    @Test("batond status: an unreadable app state exits 3 with state_corrupt, names the file, and still lists the app",
          arguments: StateCorruption.allCases)
    func statusReportsCorruptAppState(_ corruption: StateCorruption) async throws {
        let fixture = try await Self.deployedHost()
        defer { fixture.remove() }
        let statePath = fixture.layout.appState("web")
        try corruption.apply(to: statePath)

        let json = try Self.batond(["status", "--config", fixture.configPath, "--json"])
        #expect(json.status == 3, "\(corruption): \(json.stdout)\(json.stderr)")
        #expect(json.stderr.contains("error: state_corrupt: state file \(statePath) is unreadable"), "\(json.stderr)")
        #expect(json.stderr.contains("batond state rebuild web"))
        let apps = try BatonJSON.decode(AppList.self, from: Data(json.stdout.utf8)).apps
        let web = try #require(apps.first { $0.app == "web" }, "the app is dropped from \(json.stdout)")
        #expect(web.stateError?.code == "state_corrupt")
        #expect(web.current == "v2")

        let text = try Self.batond(["status", "--config", fixture.configPath])
        #expect(text.status == 3)
        #expect(text.stdout.contains("STATE CORRUPT (state_corrupt)"), "\(text.stdout)")
    }

    @Test("batond status: a state file that is gone while current names a release is state_corrupt too")
    func statusReportsMissingAppState() async throws {
        let fixture = try await Self.deployedHost()
        defer { fixture.remove() }
        try FileManager.default.removeItem(atPath: fixture.layout.appState("web"))
        let status = try Self.batond(["status", "--config", fixture.configPath, "--json"])
        #expect(status.status == 3, "\(status.stdout)\(status.stderr)")
        #expect(status.stderr.contains("the file is missing"))
        let apps = try BatonJSON.decode(AppList.self, from: Data(status.stdout.utf8)).apps
        #expect(apps.first?.stateError?.code == "state_corrupt")
    }

    @Test("batond status: a truncated deployment record is reported, for the app and by file")
    func statusReportsTruncatedRecord() async throws {
        let fixture = try await Self.deployedHost()
        defer { fixture.remove() }
        let record = fixture.layout.deployment("web-2")
        try StateCorruption.truncated.apply(to: record)

        let status = try Self.batond(["status", "--config", fixture.configPath, "--json"])
        #expect(status.status == 3, "\(status.stdout)\(status.stderr)")
        #expect(status.stderr.contains("error: state_corrupt: deployment record \(record) is unreadable"), "\(status.stderr)")
        let web = try #require(try BatonJSON.decode(AppList.self, from: Data(status.stdout.utf8)).apps.first)
        #expect(web.stateError?.code == "state_corrupt")
        #expect(web.lastSerial == 2)

        // An older record, which no app status depends on, is still reported by file.
        try StateCorruption.truncated.apply(to: fixture.layout.deployment("web-1"))
        let again = try Self.batond(["status", "--config", fixture.configPath])
        #expect(again.status == 3)
        #expect(again.stderr.contains(fixture.layout.deployment("web-1")), "\(again.stderr)")
    }

    @Test("a deployment of an app with unreadable state is refused with state_corrupt, and its files are untouched",
          arguments: StateCorruption.allCases)
    func deploymentRefusedAndFilesUntouched(_ corruption: StateCorruption) async throws {
        let fixture = try await Self.deployedHost()
        defer { fixture.remove() }
        try corruption.apply(to: fixture.layout.appState("web"))
        let v3 = try fixture.artifact("v3")
        let envelope = try fixture.envelope("v3", artifact: v3)
        let before = try DirectorySnapshot.take(fixture.dataDirectory + "/apps")
            .merging(try DirectorySnapshot.take(fixture.dataDirectory + "/state/apps")) { a, _ in a }
        let recordsBefore = try DirectorySnapshot.take(fixture.layout.deploymentsDirectory)

        // A start (reconciliation) and the deployment itself.
        let engine = try fixture.engine()
        let problems = await engine.reconcile()
        #expect(problems.map(\.reportedCode) == ["state_corrupt"])
        do {
            _ = try await engine.submit(envelope: envelope.bytes, artifactFile: v3.path)
            Issue.record("\(corruption): a deployment of an app with unreadable state was accepted")
        } catch {
            #expect(error.status == 409)
            #expect(error.info.code == "state_corrupt", "\(error)")
            #expect(error.info.message.contains(fixture.layout.appState("web")))
        }
        await engine.waitForAll()
        let after = try DirectorySnapshot.take(fixture.dataDirectory + "/apps")
            .merging(try DirectorySnapshot.take(fixture.dataDirectory + "/state/apps")) { a, _ in a }
        #expect(DirectorySnapshot.difference(before, after).isEmpty, "\(DirectorySnapshot.difference(before, after))")
        #expect(try DirectorySnapshot.take(fixture.layout.deploymentsDirectory) == recordsBefore)
        #expect(fixture.current() == "v2")
        // The refusal is evidence too.
        let audit = try String(contentsOfFile: fixture.layout.auditLog, encoding: .utf8)
        #expect(audit.split(separator: "\n").last?.contains(#""result":"state_corrupt""#) == true)
    }

    @Test("a deployment is refused while the last deployment's record is truncated")
    func deploymentRefusedForTruncatedRecord() async throws {
        let fixture = try await Self.deployedHost()
        defer { fixture.remove() }
        let record = fixture.layout.deployment("web-2")
        try StateCorruption.truncated.apply(to: record)
        let truncated = try Data(contentsOf: URL(fileURLWithPath: record))
        let engine = try fixture.engine()
        let v3 = try fixture.artifact("v3")
        let envelope = try fixture.envelope("v3", artifact: v3)
        do {
            _ = try await engine.submit(envelope: envelope.bytes, artifactFile: v3.path)
            Issue.record("accepted beside a truncated record")
        } catch {
            #expect(error.info.code == "state_corrupt")
            #expect(error.info.message.contains(record))
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: record)) == truncated)
        #expect(fixture.current() == "v2")
    }

    @Test("batond state rebuild: keeps the unreadable file aside and rebuilds current, previous, the held releases and the serial",
          arguments: StateCorruption.allCases)
    func rebuild(_ corruption: StateCorruption) async throws {
        let fixture = try await Self.deployedHost()
        defer { fixture.remove() }
        let statePath = fixture.layout.appState("web")
        try corruption.apply(to: statePath)
        let broken = try Data(contentsOf: URL(fileURLWithPath: statePath))

        let rebuilt = try Self.batond(["state", "rebuild", "web", "--config", fixture.configPath])
        #expect(rebuilt.status == 0, "\(rebuilt.stdout)\(rebuilt.stderr)")
        let aside = try FileManager.default.contentsOfDirectory(atPath: fixture.layout.appStateDirectory)
            .filter { $0.hasPrefix("web.json.corrupt-") }
        #expect(aside.count == 1)
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(fixture.layout.appStateDirectory)/\(aside[0])")) == broken)

        let status = try Self.batond(["status", "--config", fixture.configPath, "--json"])
        #expect(status.status == 0, "\(status.stderr)")
        let web = try #require(try BatonJSON.decode(AppList.self, from: Data(status.stdout.utf8)).apps.first)
        #expect(web.stateError == nil)
        #expect(web.current == "v2")
        #expect(web.previous == "v1")
        #expect(web.lastSerial == 2)
        #expect(web.lastPhase == .succeeded)
        #expect(web.held?.map(\.release) == ["v2", "v1"])

        // Nothing left to rebuild.
        let again = try Self.batond(["state", "rebuild", "web", "--config", fixture.configPath])
        #expect(again.status == 1)
        #expect(again.stderr.contains("state_intact"))

        // The same host deploys again; what was accepted before is still a replay.
        let engine = try fixture.engine()
        await engine.reconcile()
        #expect(fixture.releasesOnDisk() == ["v1", "v2"], "the start after a rebuild deletes no release")
        let v3 = try fixture.artifact("v3")
        let record = try await engine.deploy(try fixture.envelope("v3", artifact: v3), artifact: v3.path)
        #expect(record.phase == .succeeded)
        let stale = try fixture.envelope("v2b", artifact: v3, serial: 2)
        do {
            _ = try await engine.submit(envelope: stale.bytes, artifactFile: v3.path)
            Issue.record("serial 2 accepted again after a rebuild")
        } catch {
            #expect(error.info.code == VerificationCode.staleSerial.rawValue, "\(error)")
        }

    }

    @Test("batond state rebuild: a truncated record is kept aside and its serial still counts")
    func rebuildAfterTruncatedRecord() async throws {
        let fixture = try await Self.deployedHost()
        defer { fixture.remove() }
        try StateCorruption.truncated.apply(to: fixture.layout.deployment("web-2"))
        let rebuilt = try Self.batond(["state", "rebuild", "web", "--config", fixture.configPath])
        #expect(rebuilt.status == 0, "\(rebuilt.stdout)\(rebuilt.stderr)")
        #expect(rebuilt.stdout.contains("web-2.json.corrupt-"))
        #expect(!FileManager.default.fileExists(atPath: fixture.layout.deployment("web-2")))
        let status = try Self.batond(["status", "--config", fixture.configPath, "--json"])
        #expect(status.status == 0, "\(status.stderr)")
        let web = try #require(try BatonJSON.decode(AppList.self, from: Data(status.stdout.utf8)).apps.first)
        #expect(web.lastSerial == 2)
        #expect(web.current == "v2")
        // v2's success is no longer proven: it is on disk but not held.
        #expect(web.releases.sorted() == ["v1", "v2"])
        #expect(web.held?.map(\.release) == ["v1"])
    }

    @Test("batond state rebuild refuses while another process holds the data directory")
    func rebuildRefusesWhileLocked() async throws {
        let fixture = try await Self.deployedHost()
        defer { fixture.remove() }
        try StateCorruption.empty.apply(to: fixture.layout.appState("web"))
        let engine = try fixture.engine()
        try withExtendedLifetime(engine) {
            let rebuilt = try Self.batond(["state", "rebuild", "web", "--config", fixture.configPath])
            #expect(rebuilt.status != 0)
            #expect(rebuilt.stderr.contains("agent_busy"), "\(rebuilt.stderr)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: fixture.layout.appState("web"))).isEmpty)
        }
    }
}
