@testable import BatonAgent
import BatonProtocol
import BatonTestSupport
import Foundation
import Logging
import ServiceLifecycle
import Testing

/// The engine's deployments run under its service: a shutdown waits for them up to its
/// grace, then cuts them off between steps, leaving each one for reconciliation at the
/// next start and never half-switched.
@Suite(.serialized) struct EngineWorkTests {
    /// Runs an `EngineService` with `grace` around `body` in a `ServiceGroup`, then shuts
    /// the group down gracefully and returns how long the shutdown took.
    func underService(
        _ engine: DeploymentEngine, grace: Duration, _ body: () async throws -> Void
    ) async throws -> Duration {
        var logger = Logger(label: "test.engine-service")
        logger.logLevel = .critical
        let service = EngineService(engine: engine, grace: grace, logger: logger)
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: [service], logger: logger))
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            try await body()
            let started = ContinuousClock.now
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            return ContinuousClock.now - started
        }
    }

    /// Polls the record as the agent serves it until `phase` (or a terminal one).
    func waitForPhase(_ fixture: AgentFixture, _ id: String, _ phase: DeploymentPhase) async throws -> DeploymentPhase? {
        let reader = StateReader(dataDirectory: fixture.dataDirectory)
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if let current = (try? reader.record(id))?.phase, current == phase || current.isTerminal { return current }
            try await Task.sleep(for: .milliseconds(10))
        }
        return nil
    }

    /// v1 is live; a deployment of v2 whose `hooks` never end on their own is cut off by
    /// a shutdown in `phase`. Returns the fixture (the engine that ran it is gone) and the
    /// cut-off deployment's id.
    func cutOff(in phase: DeploymentPhase, hooks: Hooks) async throws -> (AgentFixture, String) {
        let fixture = try AgentFixture()
        let engine = try fixture.engine()
        let v1 = try fixture.artifact("v1")
        #expect(try await engine.deploy(try fixture.envelope("v1", artifact: v1), artifact: v1.path).phase == .succeeded)
        let v2 = try fixture.artifact("v2")
        var id = ""
        let shutdown = try await underService(engine, grace: .milliseconds(300)) {
            id = try await engine.submit(envelope: try fixture.envelope("v2", artifact: v2, hooks: hooks).bytes, artifactFile: v2.path).id
            #expect(try await waitForPhase(fixture, id, phase) == phase)
        }
        // The grace, then the hook is stopped (SIGTERM, then SIGKILL): not the hook's 30 s.
        #expect(shutdown < .seconds(10))
        #expect(await engine.hasWork == false)
        let record = try #require(try StateReader(dataDirectory: fixture.dataDirectory).record(id))
        #expect(record.phase == phase, "\(record.events.map(\.message))")
        #expect(record.finishedAt == nil)
        #expect(StateReader(dataDirectory: fixture.dataDirectory).appStatus("web")?.activeDeploymentID == id)
        return (fixture, id)
    }

    /// The next start: a new engine on the same data directory. The first one's lock
    /// goes with the engine itself, once the last task that held it has let go, which
    /// may be a moment after its service returned.
    func restart(_ fixture: AgentFixture) async throws -> DeploymentEngine {
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            do {
                return try fixture.engine()
            } catch let error as AgentError where error.code == .agentBusy && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    @Test func aShutdownCutsOffADeploymentBeforeTheSwitchAndTheNextStartFailsIt() async throws {
        let (fixture, id) = try await cutOff(in: .preparing, hooks: Hooks(prepare: Hook(command: .shell("sleep 30"))))
        defer { fixture.remove() }
        #expect(fixture.current() == "v1")
        let engine = try await restart(fixture)
        await engine.reconcile()
        let record = try #require(await engine.record(id))
        #expect(record.phase == .failed)
        #expect(record.reconciliation?.contains("before the switch") == true)
        #expect(fixture.current() == "v1")
        #expect(fixture.stagingEntries().isEmpty)
        #expect(await engine.appStatus("web")?.activeDeploymentID == nil)
    }

    @Test func aShutdownCutsOffADeploymentAfterTheSwitchAndTheNextStartRollsItBack() async throws {
        let (fixture, id) = try await cutOff(in: .activating, hooks: Hooks(activate: Hook(command: .shell("sleep 30"))))
        defer { fixture.remove() }
        // Cut off after the switch: `current` names the whole new release, not a mix.
        #expect(fixture.current() == "v2")
        #expect(fixture.currentVersion() == "v2\n")
        let engine = try await restart(fixture)
        await engine.reconcile()
        let record = try #require(await engine.record(id))
        #expect(record.phase == .rolledBack, "\(record.events.map(\.message))")
        #expect(record.reconciliation?.contains("after the switch") == true)
        #expect(fixture.current() == "v1")
    }

    @Test func aDeploymentThatEndsWithinTheGraceIsNotCutOff() async throws {
        let fixture = try AgentFixture()
        defer { fixture.remove() }
        let engine = try fixture.engine()
        let v1 = try fixture.artifact("v1")
        var id = ""
        _ = try await underService(engine, grace: .seconds(20)) {
            id = try await engine.submit(
                envelope: try fixture.envelope("v1", artifact: v1, hooks: Hooks(prepare: Hook(command: .shell("sleep 0.5")))).bytes,
                artifactFile: v1.path
            ).id
            #expect(try await waitForPhase(fixture, id, .preparing) == .preparing)
        }
        #expect(await engine.record(id)?.phase == .succeeded)
        #expect(fixture.current() == "v1")
    }

    @Test func theServiceRunsWhatTheEngineAccepts() async throws {
        let fixture = try AgentFixture()
        defer { fixture.remove() }
        let engine = try fixture.engine()
        let v1 = try fixture.artifact("v1")
        _ = try await underService(engine, grace: .seconds(5)) {
            let id = try await engine.submit(envelope: try fixture.envelope("v1", artifact: v1).bytes, artifactFile: v1.path).id
            // Nobody waits on it here: the service's work loop runs it.
            #expect(try await waitForPhase(fixture, id, .succeeded) == .succeeded)
        }
        #expect(fixture.current() == "v1")
    }

    @Test func aClosedEventStreamIsForgottenAtOnce() async throws {
        let fixture = try AgentFixture()
        defer { fixture.remove() }
        let engine = try fixture.engine()
        let v1 = try fixture.artifact("v1")
        let accepted = try await engine.submit(
            envelope: try fixture.envelope("v1", artifact: v1, hooks: Hooks(prepare: Hook(command: .shell("sleep 0.3")))).bytes,
            artifactFile: v1.path)
        let events = try #require(await engine.events(accepted.id))
        #expect(engine.subscribers.count == 1)
        let reader = Task {
            for await _ in events {}
        }
        reader.cancel()
        await reader.value
        // No hop through a task: the stream's end removed it.
        #expect(engine.subscribers.count == 0)
        #expect(await engine.wait(for: accepted.id)?.phase == .succeeded)
    }

    @Test func anEventAppendDoesNotRewriteTheRecordSummary() async throws {
        let fixture = try AgentFixture()
        defer { fixture.remove() }
        let engine = try fixture.engine()
        let v1 = try fixture.artifact("v1")
        let marker = fixture.dir.child("go")
        let accepted = try await engine.submit(
            envelope: try fixture.envelope(
                "v1", artifact: v1,
                hooks: Hooks(prepare: Hook(command: .shell("for i in $(seq 600); do test -e '\(marker)' && exit 0; sleep 0.05; done; exit 1")))
            ).bytes,
            artifactFile: v1.path)
        let summary = fixture.layout.deployment(accepted.id)
        let written = try FileIdentity(summary)
        async let ended = engine.wait(for: accepted.id)
        #expect(try await waitForPhase(fixture, accepted.id, .preparing) == .preparing)
        // Four events (fetching, received, unpacking, unpacked) and the move to preparing
        // went to the event log; the summary is the one written at acceptance.
        #expect(try FileIdentity(summary) == written)
        let stale = try BatonJSON.decode(DeploymentRecord.self, from: Data(contentsOf: URL(fileURLWithPath: summary)))
        #expect(stale.phase == .accepted)
        #expect(stale.events.count == 1)
        FileManager.default.createFile(atPath: marker, contents: nil)
        let record = try #require(await ended)
        #expect(record.phase == .succeeded)
        // The terminal phase is a summary: the file alone now says how it ended.
        #expect(try FileIdentity(summary) != written)
        let final = try BatonJSON.decode(DeploymentRecord.self, from: Data(contentsOf: URL(fileURLWithPath: summary)))
        #expect(final == record)
    }

    @Test func durableWritesRunOnTheBlockingPool() async throws {
        let name = try await Blocking.files { () throws(AgentError) -> String in
            // The name of the thread the work runs on.
            (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? ""
        }
        // NIO names its thread pool's threads "…TP-#n" (the singleton's "SGLTN-TP-#n").
        #expect(name.contains("TP-#"), "\(name)")
    }
}
