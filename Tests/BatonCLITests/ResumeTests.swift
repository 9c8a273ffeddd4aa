import BatonTestSupport
import Foundation
import Testing

@Suite("baton rollout resume and abort", .serialized)
struct ResumeTests {
    static func rolloutID(_ command: BackgroundCommand) throws -> String {
        let first = try #require(command.output.first)
        let event = try #require(try JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: Any])
        return try #require(event["rolloutID"] as? String)
    }

    @Test("the controller killed with SIGKILL mid-rollout, then resume: every host on the new release, nothing deployed twice")
    func resumeAfterKill() async throws {
        let fleet = try await RolloutTests.fleetOnV1()
        defer { fleet.release(); fleet.shutdown() }
        let v2 = try await RolloutTests.signedRelease(fleet, "v2")
        try fleet.hold()
        let rollout = try fleet.start(["rollout", v2, "--batch", "2", "--json"])
        try await rollout.waitForLine(containing: "\"host\":\"host-2\"", "\"phase\":\"activating\"")
        let id = try Self.rolloutID(rollout)
        kill(rollout.process.processIdentifier, SIGKILL)
        _ = await rollout.waitForExit()
        fleet.release()

        // Killed: the history says it never finished, and its lock is still held.
        let shown = try await fleet.run(["history", "show", id])
        #expect(shown.stdout.contains("unfinished"), "\(shown.stdout)")
        #expect(try await fleet.run(["rollout", v2, "--plain"]).status == 4, "a new rollout is locked out")

        let resumed = try await fleet.run(["rollout", "resume", id, "--plain"])
        #expect(resumed.status == 0, "\(resumed.stdout)\(resumed.stderr)")
        for host in fleet.hostIDs {
            #expect(fleet.current(host) == "v2", "\(host)")
            let v2Deployments = try fleet.records(host).filter { $0["release"] as? String == "v2" }
            #expect(v2Deployments.count == 1, "\(host) deployed v2 \(v2Deployments.count) times")
        }
        let history = try await fleet.run(["history", "web", "--json"])
        let rollouts = try #require(try JSONSerialization.jsonObject(with: Data(history.stdout.utf8)) as? [[String: Any]])
        #expect(rollouts.first?["id"] as? String == id)
        #expect(rollouts.first?["outcome"] as? String == "succeeded")
        #expect(try await fleet.run(["lock", "list"]).stdout.contains("no locks held"))
    }

    @Test("resume and abort of a live rollout exit 4 naming its controller and leave its lock; after lock break abort records aborted and the original stops, abandoned")
    func liveControllerIsFenced() async throws {
        let fleet = try await RolloutTests.fleetOnV1()
        defer { fleet.shutdown() }
        let v2 = try await RolloutTests.signedRelease(fleet, "v2")
        // The controller stays alive in its pause between the canary and the rest.
        let original = try fleet.start(["rollout", v2, "--canary", "1", "--pause", "12s", "--json"])
        defer { if original.process.isRunning { kill(original.process.processIdentifier, SIGKILL) } }
        try await original.waitForLine(containing: "pausing")
        let id = try Self.rolloutID(original)
        let pid = original.process.processIdentifier

        let resumed = try await fleet.run(["rollout", "resume", id, "--plain"])
        #expect(resumed.status == 4, "\(resumed.stdout)\(resumed.stderr)")
        #expect(resumed.stderr.contains("lock_held") && resumed.stderr.contains("pid \(pid)") && resumed.stderr.contains("lease until"),
                "\(resumed.stderr)")
        let aborted = try await fleet.run(["rollout", "abort", id, "--plain"])
        #expect(aborted.status == 4, "\(aborted.stdout)\(aborted.stderr)")
        #expect(aborted.stderr.contains("pid \(pid)"), "\(aborted.stderr)")
        // The live rollout's lock is still there, and nothing was reverted.
        let locks = try await fleet.run(["lock", "list"])
        #expect(locks.stdout.contains("web staging: rollout \(id)") && locks.stdout.contains("pid \(pid)"), "\(locks.stdout)")
        #expect(fleet.current("host-1") == "v2")
        #expect(original.process.isRunning)

        // `lock break` is the explicit override; then abort goes ahead.
        #expect(try await fleet.run(["lock", "break", "web", "staging", "--reason", "test"]).status == 0)
        let afterBreak = try await fleet.run(["rollout", "abort", id, "--json"])
        #expect(afterBreak.status == 1, "\(afterBreak.stdout)\(afterBreak.stderr)")
        #expect(fleet.current("host-1") == "v1")

        // The original wakes from its pause, finds its term gone and stops: no more waves, no
        // revert, `abandoned`; the history keeps the abort's `aborted`.
        #expect(await original.waitForExit() == 4, "\(original.output.suffix(3))")
        let originalLast = try #require(original.output.last)
        let originalSummary = try #require(try JSONSerialization.jsonObject(with: Data(originalLast.utf8)) as? [String: Any])
        #expect(originalSummary["outcome"] as? String == "abandoned")
        for host in fleet.hostIDs { #expect(fleet.current(host) == "v1", "\(host)") }
        let history = try await fleet.run(["history", "web", "--json"])
        let rollouts = try #require(try JSONSerialization.jsonObject(with: Data(history.stdout.utf8)) as? [[String: Any]])
        #expect(rollouts.first?["id"] as? String == id)
        #expect(rollouts.first?["outcome"] as? String == "aborted")
        #expect(try await fleet.run(["lock", "list"]).stdout.contains("no locks held"))
    }

    @Test("paused after the canary, then abort: the canary is reverted, nothing else touched")
    func abortAfterPause() async throws {
        let fleet = try await RolloutTests.fleetOnV1()
        defer { fleet.shutdown() }
        let v2 = try await RolloutTests.signedRelease(fleet, "v2")
        let paused = try await fleet.run(["rollout", v2, "--canary", "1", "--pause-after-canary", "--json"])
        #expect(paused.status == 5)
        let pausedLast = try #require(paused.stdout.split(separator: "\n").last)
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(pausedLast.utf8)) as? [String: Any])
        let id = try #require(summary["rolloutID"] as? String)
        #expect(fleet.current("host-1") == "v2")
        let recordsBefore = try fleet.hostIDs.dropFirst().map { try fleet.records($0).count }

        let aborted = try await fleet.run(["rollout", "abort", id, "--json"])
        #expect(aborted.status == 1, "\(aborted.stdout) \(aborted.stderr)")
        let abortedLast = try #require(aborted.stdout.split(separator: "\n").last)
        let result = try #require(try JSONSerialization.jsonObject(with: Data(abortedLast.utf8)) as? [String: Any])
        #expect(result["reverted"] as? [String] == ["host-1"])
        for host in fleet.hostIDs { #expect(fleet.current(host) == "v1", "\(host)") }
        #expect(try fleet.records("host-1").last?["isRollback"] as? Bool == true)
        #expect(try fleet.hostIDs.dropFirst().map { try fleet.records($0).count } == recordsBefore)
        let again = try await fleet.run(["rollout", "resume", id])
        #expect(again.status == 2 && again.stderr.contains("rollout_finished"))
    }
}
