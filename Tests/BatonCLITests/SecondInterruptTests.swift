import BatonTestSupport
import Foundation
import Testing

/// A second Ctrl-C, with five real agents: the rollout session stops at once.
@Suite("Second Ctrl-C", .serialized)
struct SecondInterruptTests {
    @Test("a second Ctrl-C stops at once with status 130, records the rollout as needing attention and releases the lock")
    func secondInterruptStopsAtOnce() async throws {
        let fleet = try await RolloutTests.fleetOnV1()
        defer { fleet.release(); fleet.shutdown() }
        let v2 = try await RolloutTests.signedRelease(fleet, "v2")
        try fleet.hold()
        let rollout = try fleet.start(["rollout", v2, "--batch", "1", "--json"])
        let line = try await rollout.waitForLine(containing: "\"host\":\"host-1\"", "\"phase\":\"activating\"")
        let event = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        let rolloutID = try #require(event["rolloutID"] as? String)
        kill(rollout.process.processIdentifier, SIGINT)
        try await Task.sleep(for: .milliseconds(300))
        kill(rollout.process.processIdentifier, SIGINT)
        // host-1 stays held: only stopping at once ends the command now.
        let status = await rollout.waitForExit(timeout: 30)
        #expect(status == 130, "\(rollout.stderr)")
        #expect(rollout.stderr.contains("stopped; rollout \(rolloutID) is recorded as needing attention"), "\(rollout.stderr)")
        #expect(try await fleet.run(["lock", "list"]).stdout.contains("no locks held"))
        let history = try await fleet.run(["history", "show", rolloutID])
        #expect(history.stdout.contains("needs_attention") && history.stdout.contains("stopped at once by a second SIGINT"), "\(history.stdout)")
    }
}
