@testable import BatonController
import BatonProtocol
import Foundation
import Testing

/// The runner performs what the state machine decides, over agents in memory
/// (``FakeAgentClient``); the end-to-end tests in BatonCLITests run it over real agents.
@Suite("Rollout runner")
struct RolloutRunnerTests {
    typealias Fixture = RolloutFixture

    /// Everything the runner emitted, readable as it goes.
    final class Events: Sendable {
        let stream: AsyncStream<RolloutEvent>
        let sink: AsyncStream<RolloutEvent>.Continuation

        init() { (stream, sink) = AsyncStream.makeStream(of: RolloutEvent.self) }

        /// Waits for the first event matching `match`, or the end of the rollout.
        func first(where match: (RolloutEvent) -> Bool) async -> RolloutEvent? {
            for await event in stream {
                if match(event) { return event }
                if event.type == .finished { return nil }
            }
            return nil
        }
    }

    func statuses(_ hosts: [String]) -> [String: AppStatus] {
        Dictionary(uniqueKeysWithValues: hosts.map { ($0, Fixture.status()) })
    }

    @Test("a halt reverts the switched hosts with one envelope per approved manifest, signed by the controller's key")
    func haltRevertsWithSignedEnvelopes() async throws {
        let key = SigningKey()
        let request = Fixture.request(hosts: 4, key: key) { $0.parallel = 1 }
        var statuses = statuses(Fixture.hostIDs(4))
        statuses["host-3"] = Fixture.status(current: "v0", held: [Fixture.held("v0", serial: 3, digest: "digest-v0")])
        let client = FakeAgentClient(rolloutEnvelope: request.envelope, statuses: statuses, outcomes: ["host-4": .rolledBack])
        let events = Events()
        let runner = RolloutRunner(client: client, request: request) { events.sink.yield($0) }
        let summary = await runner.run()

        #expect(summary.outcome == .failed)
        #expect(summary.reverted == ["host-1", "host-2", "host-3"])
        #expect(summary.revertSerial == 11)
        let reverts = await client.reverts
        let one = try #require(reverts["host-1"])
        #expect(reverts["host-2"] == one, "the same approved manifest: the same envelope")
        #expect(reverts["host-3"] != nil && reverts["host-3"] != one)
        for (host, release) in [("host-1", "v1"), ("host-3", "v0")] {
            let envelope = try Envelope.parse(try #require(reverts[host]))
            #expect(envelope.signatures.count == 1)
            #expect(key.verifyingKey.isValidSignature(envelope.signatures[0].sig, for: envelope.preAuthenticationEncoding))
            let manifest = try BatonJSON.decode(Manifest.self, from: Data(envelope.payload))
            #expect(manifest.release == release && manifest.serial == 11)
        }
    }

    @Test("an interrupt cuts a 10-minute --pause short: the rollout reverts at once")
    func interruptCutsPauseShort() async throws {
        let request = Fixture.request(hosts: 2) {
            $0.batch = .hosts(1)
            $0.pause = .minutes(10)
        }
        let client = FakeAgentClient(rolloutEnvelope: request.envelope, statuses: statuses(Fixture.hostIDs(2)))
        let events = Events()
        let runner = RolloutRunner(client: client, request: request) { events.sink.yield($0) }
        let run = Task { await runner.run() }
        let pausing = await events.first { $0.message.hasPrefix("pausing") }
        try #require(pausing != nil)
        let clock = ContinuousClock()
        let interrupted = clock.now
        await runner.interrupt("interrupted by the operator (SIGINT)")
        let summary = await run.value
        #expect(clock.now - interrupted < .seconds(5), "the pause did not hold the halt back")
        #expect(summary.reverted == ["host-1"] && summary.skipped == ["host-2"])
        #expect(summary.haltReason == "interrupted by the operator (SIGINT)")
        #expect(await client.submitted.map(\.host) == ["host-1", "host-1"], "host-1's deployment and its revert, nothing else")
    }

    @Test("a lock lost during a --pause ends it at once: nothing more deployed or reverted, abandoned")
    func lostLockCutsPauseShort() async throws {
        let request = Fixture.request(hosts: 2) {
            $0.batch = .hosts(1)
            $0.pause = .minutes(10)
        }
        let client = FakeAgentClient(rolloutEnvelope: request.envelope, statuses: statuses(Fixture.hostIDs(2)))
        let events = Events()
        let runner = RolloutRunner(client: client, request: request) { events.sink.yield($0) }
        let run = Task { await runner.run() }
        let pausing = await events.first { $0.message.hasPrefix("pausing") }
        try #require(pausing != nil)
        let clock = ContinuousClock()
        let lost = clock.now
        await runner.lostLock("the rollout lock was broken or taken over")
        let summary = await run.value
        #expect(clock.now - lost < .seconds(5))
        #expect(summary.outcome == .abandoned)
        #expect(await client.submitted.map(\.host) == ["host-1"])
    }

    @Test("the lock check before each wave: once it fails, nothing more is deployed")
    func lockCheckedBeforeWaves() async {
        let request = Fixture.request(hosts: 2) { $0.batch = .hosts(1) }
        let client = FakeAgentClient(rolloutEnvelope: request.envelope, statuses: statuses(Fixture.hostIDs(2)))
        let checks = Counter()
        let runner = RolloutRunner(client: client, request: request, holdsLock: { await checks.next() <= 1 }) { _ in }
        let summary = await runner.run()
        #expect(summary.outcome == .abandoned)
        #expect(await client.submitted.map(\.host) == ["host-1"])
    }

    @Test("unreachable hosts and failed deployments come back as the host's result")
    func unreachableAndFailed() async {
        let request = Fixture.request(hosts: 3) { $0.failureThreshold = .hosts(2) }
        let client = FakeAgentClient(
            rolloutEnvelope: request.envelope, statuses: statuses(Fixture.hostIDs(3)), outcomes: ["host-2": .rolledBack],
            unreachable: ["host-3"])
        let runner = RolloutRunner(client: client, request: request) { _ in }
        let summary = await runner.run()
        #expect(summary.succeeded == ["host-1"])
        #expect(summary.unreachable == ["host-3"])
        #expect(summary.failed.map(\.host) == ["host-2"])
        #expect(summary.failed.first?.error?.code == "health_check_failed")
        #expect(summary.outcome == .needsAttention)
    }

    actor Counter {
        var count = 0
        func next() -> Int {
            count += 1
            return count
        }
    }
}
