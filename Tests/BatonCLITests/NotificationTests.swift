import BatonTestSupport
import Foundation
import Testing

/// `notifications:` in `baton.yaml`, end to end: real agents, the real `baton`, and a
/// webhook receiver on 127.0.0.1.
@Suite("Rollout notifications", .serialized)
struct NotificationTests {
    @Test("a canary that fails on one host: started, halted, reverted, finished, one each, with their severities; none per host")
    func failingCanary() async throws {
        let fleet = try await RolloutTests.fleetOnV1()
        defer { fleet.shutdown() }
        let everything = try await WebhookReceiver.start()
        let loud = try await WebhookReceiver.start()
        defer {
            Task {
                await everything.stop()
                await loud.stop()
            }
        }
        let config = fleet.dir.child("baton.yaml")
        let base = try String(contentsOfFile: config, encoding: .utf8)
        try (base + """

            notifications:
              - url: \(everything.url)
              - url: \(loud.url)
                format: slack
                minSeverity: warning
            """).write(toFile: config, atomically: false, encoding: .utf8)

        // Two canary hosts: host-1 is healthy and switched, host-2 fails its health check,
        // so the rollout halts and the controller reverts host-1.
        let envelope = try await RolloutTests.signedRelease(fleet, "v2", failOn: ["host-2"])
        let result = try await fleet.run(["rollout", envelope, "--canary", "2", "--batch", "2", "--plain"])
        #expect(result.status == 1, "\(result.stdout)\n\(result.stderr)")
        #expect(!result.stderr.contains("warning:"), "\(result.stderr)")
        for host in fleet.hostIDs { #expect(fleet.current(host) == "v1", "\(host)") }

        // The command waited for its notifications before exiting.
        let generic = everything.requests.compactMap(\.json)
        #expect(generic.map { $0["event"] as? String } == ["started", "halted", "reverted", "finished"])
        #expect(generic.map { $0["severity"] as? String } == ["info", "warning", "warning", "warning"])
        let rolloutID = try #require(generic.first?["rolloutID"] as? String)
        for body in generic {
            #expect(body["rolloutID"] as? String == rolloutID)
            #expect(body["app"] as? String == "web" && body["release"] as? String == "v2" && body["environment"] as? String == "staging")
            #expect(body["hint"] as? String == "baton history show \(rolloutID)")
            #expect((body["actor"] as? String)?.contains("@") == true)
        }
        let halted = generic[1]
        #expect((halted["haltReason"] as? String)?.isEmpty == false)
        let finished = generic[3]
        #expect(finished["outcome"] as? String == "failed")
        let counts = try #require(finished["counts"] as? [String: Int])
        #expect(counts["hosts"] == 5 && counts["reverted"] == 1 && counts["failed"] == 1 && counts["skipped"] == 3, "\(counts)")

        // The slack hook takes warnings and up: the same milestones but `started`.
        let slack = loud.requests.compactMap(\.json)
        #expect(slack.count == 3)
        let texts = slack.compactMap { $0["text"] as? String }
        #expect(texts.count == 3)
        #expect(texts.first?.hasPrefix("[warning] web v2 to staging halted (rollout \(rolloutID)") == true, "\(texts)")
        #expect(texts.last?.hasPrefix("[warning] web v2 to staging finished: failed") == true, "\(texts)")

        // `baton history show` is where the hint leads.
        let shown = try await fleet.run(["history", "show", rolloutID])
        #expect(shown.status == 0, "\(shown.stderr)")
    }

    @Test("a receiver that is down: the rollout succeeds as without it, and the command says so once on stderr")
    func downReceiver() async throws {
        let fleet = try await RolloutTests.fleetOnV1(hosts: 2)
        defer { fleet.shutdown() }
        let receiver = try await WebhookReceiver.start()
        await receiver.stop()
        let config = fleet.dir.child("baton.yaml")
        let base = try String(contentsOfFile: config, encoding: .utf8)
        try (base + "\nnotifications:\n  - url: \(receiver.url)\n").write(toFile: config, atomically: false, encoding: .utf8)
        let envelope = try await RolloutTests.signedRelease(fleet, "v2")
        let result = try await fleet.run(["rollout", envelope, "--plain"])
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        for host in fleet.hostIDs { #expect(fleet.current(host) == "v2", "\(host)") }
        let warnings = result.stderr.split(separator: "\n").filter { $0.hasPrefix("warning: notification to 127.0.0.1 failed: ") }
        #expect(warnings.count == 1, "\(result.stderr)")
    }

    @Test("a receiver that never answers: the rollout is not held up, and the command gives up on it after 5 s, saying so")
    func hungReceiver() async throws {
        let fleet = try await RolloutTests.fleetOnV1(hosts: 2)
        defer { fleet.shutdown() }
        let receiver = try await WebhookReceiver.start(otherwise: .silent)
        defer { Task { await receiver.stop() } }
        let config = fleet.dir.child("baton.yaml")
        let base = try String(contentsOfFile: config, encoding: .utf8)
        try (base + "\nnotifications:\n  - url: \(receiver.url)\n").write(toFile: config, atomically: false, encoding: .utf8)
        let envelope = try await RolloutTests.signedRelease(fleet, "v2")
        let started = ContinuousClock.now
        let result = try await fleet.run(["rollout", envelope, "--plain"])
        let took = ContinuousClock.now - started
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        for host in fleet.hostIDs { #expect(fleet.current(host) == "v2", "\(host)") }
        #expect(result.stderr.contains("warning: gave up on 2 pending notification(s) after 5s"), "\(result.stderr)")
        // The rollout of two healthy hosts takes a few seconds; the wait adds at most 5 s.
        #expect(took < .seconds(20), "the command took \(took)")
        // `started` reached it (and, its first attempt timed out, perhaps a retry); `finished` never left the queue.
        let requests = await receiver.waitFor(1)
        #expect(!requests.isEmpty && requests.allSatisfy { $0.json?["event"] as? String == "started" }, "\(requests.count) request(s)")
    }
}
