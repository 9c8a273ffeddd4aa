@testable import BatonAgent
import BatonProtocol
import BatonTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Synchronization
import Testing

/// `batond run` gives its binary's pages back after every idle spell (`IdleTrimService`):
/// never while a call or a deployment goes on, once per spell, and again after the next one.
@Suite("Idle trim")
struct IdleTrimTests {
    final class Probe: Sendable {
        let trims = Atomic<Int>(0)
        let busy = Atomic<Bool>(false)
    }

    /// Polls until `condition` holds (10 s at most): the service ticks on its own clock.
    func eventually(_ condition: () -> Bool) async throws -> Bool {
        for _ in 0..<1000 {
            if condition() { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return condition()
    }

    @Test("every API call is counted, answered or refused, and none stays in progress")
    func callsAreCounted() async throws {
        let fixture = try AgentFixture()
        defer { fixture.remove() }
        let activity = APIActivity()
        var logger = Logger(label: "idle-trim-test")
        logger.logLevel = .critical
        let api = AgentAPI(engine: try fixture.engine(), activity: activity)
        let controller = PeerCertificateSource(uris: { _ in ["baton://controller/ci"] })
        let agentPeer = PeerCertificateSource(uris: { _ in ["baton://agent/web-2"] })
        for (peer, path, status) in [(controller, "/v1/health", 200), (controller, "/v1/nothing", 404), (agentPeer, "/v1/apps", 403)] {
            let before = activity.generation
            let app = Application(router: api.router(peer: peer), logger: logger)
            try await app.test(.router) { client in
                let response = try await client.execute(uri: path, method: .get)
                #expect(response.status.code == status)
            }
            #expect(activity.generation == before + 2, "\(path)")
            #expect(activity.callsInProgress == 0)
        }
    }

    @Test("trims once per idle spell; never during a call or a deployment")
    func oncePerIdleSpell() async throws {
        let activity = APIActivity()
        let probe = Probe()
        var logger = Logger(label: "idle-trim-test")
        logger.logLevel = .critical
        var service = IdleTrimService(
            activity: activity, isBusy: { probe.busy.load(ordering: .relaxed) }, after: .milliseconds(40), logger: logger)
        service.trim = {
            probe.trims.add(1, ordering: .relaxed)
            return ResidentCode.Outcome()
        }
        let running = Task { await service.run() }
        defer { running.cancel() }

        // A call in progress: no trim however long it lasts.
        activity.begin()
        try await Task.sleep(for: .milliseconds(400))
        #expect(probe.trims.load(ordering: .relaxed) == 0)
        // It ends: one trim, and only one however long the agent then stays idle.
        activity.end()
        #expect(try await eventually { probe.trims.load(ordering: .relaxed) == 1 })
        try await Task.sleep(for: .milliseconds(400))
        #expect(probe.trims.load(ordering: .relaxed) == 1)

        // A deployment running, the API quiet: no trim until it is over.
        probe.busy.store(true, ordering: .relaxed)
        activity.begin()
        activity.end()
        try await Task.sleep(for: .milliseconds(400))
        #expect(probe.trims.load(ordering: .relaxed) == 1)
        probe.busy.store(false, ordering: .relaxed)
        #expect(try await eventually { probe.trims.load(ordering: .relaxed) == 2 })
        try await Task.sleep(for: .milliseconds(400))
        #expect(probe.trims.load(ordering: .relaxed) == 2)

        // Cancelled (graceful shutdown): the service returns.
        running.cancel()
        await running.value
    }
}
