import BatonTestSupport
import Foundation
import Testing

/// The history store and rollout locks, with five real agents.
@Suite("History and locks", .serialized)
struct HistoryAndLockTests {
    @Test("history records every rollout with per-host results; history show matches what the agents report")
    func historyMatchesAgents() async throws {
        let fleet = try await RolloutTests.fleetOnV1()
        defer { fleet.shutdown() }
        let v2 = try await RolloutTests.signedRelease(fleet, "v2")
        #expect(try await fleet.run(["rollout", v2, "--canary", "1", "--plain"]).status == 0)
        let bad = try await RolloutTests.signedRelease(fleet, "v3", healthy: false)
        #expect(try await fleet.run(["rollout", bad, "--canary", "1", "--plain"]).status == 1)

        let list = try await fleet.run(["history", "web", "--json"])
        #expect(list.status == 0, "\(list.stderr)")
        let rollouts = try #require(try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]])
        #expect(rollouts.map { $0["release"] as? String } == ["v3", "v2", "v1"])
        #expect(rollouts.map { $0["outcome"] as? String } == ["failed", "succeeded", "succeeded"])

        for rollout in rollouts {
            let id = try #require(rollout["id"] as? String)
            let shown = try await fleet.run(["history", "show", id, "--json"])
            let object = try #require(try JSONSerialization.jsonObject(with: Data(shown.stdout.utf8)) as? [String: Any])
            let record = try #require(object["rollout"] as? [String: Any])
            let events = try #require(object["events"] as? [[String: Any]])
            #expect(events.first?["type"] as? String == "started" && events.last?["type"] as? String == "finished")
            #expect(record["signers"] as? [String] == ["ci"])
            for host in try #require(record["hosts"] as? [[String: Any]]) {
                let name = try #require(host["host"] as? String)
                guard let deploymentID = host["deploymentID"] as? String else {
                    #expect(host["phase"] as? String == "skipped", "\(name) in \(id)")
                    continue
                }
                // The agent's own record of that deployment says the same.
                let agentRecord = try #require(try fleet.records(name).first { $0["id"] as? String == deploymentID })
                #expect(agentRecord["release"] as? String == record["release"] as? String)
                #expect(agentRecord["phase"] as? String == host["phase"] as? String, "\(name) \(deploymentID)")
            }
        }
        let text = try await fleet.run(["history", "show", try #require(rollouts[0]["id"] as? String)])
        #expect(text.stdout.contains("outcome:   failed (exit 1); halted: the canary failed"))
        #expect(text.stdout.contains("host-1") && text.stdout.contains("health_check_failed"))
    }

    @Test("two rollouts of one app and environment at once: the second exits 4 naming the holder, or waits with --lock-wait")
    func secondRolloutIsLockedOut() async throws {
        let fleet = try await RolloutTests.fleetOnV1()
        defer { fleet.release(); fleet.shutdown() }
        let v2 = try await RolloutTests.signedRelease(fleet, "v2")
        try fleet.hold()
        let first = try fleet.start(["rollout", v2, "--json"])
        try await first.waitForLine(containing: "\"phase\":\"activating\"")
        let second = try await fleet.run(["rollout", v2, "--plain"])
        #expect(second.status == 4, "\(second.stdout) \(second.stderr)")
        #expect(second.stderr.hasPrefix("error: lock_held: rollout "))
        let locks = try await fleet.run(["lock", "list"])
        #expect(locks.stdout.contains("web staging: rollout "), "\(locks.stdout)")

        // With --lock-wait the second one waits for the first and then runs.
        let waiting = try fleet.start(["rollout", v2, "--lock-wait", "2m", "--json"])
        try await Task.sleep(for: .milliseconds(500))
        #expect(waiting.process.isRunning)
        fleet.release()
        #expect(await first.waitForExit() == 0)
        #expect(await waiting.waitForExit() == 0, "\(waiting.stderr)")
        #expect(try await fleet.run(["lock", "list"]).stdout.contains("no locks held"))
    }

    @Test("Ctrl-C halts the rollout, reverts what it switched, releases the lock and leaves a truthful record")
    func interruptReleasesLock() async throws {
        let fleet = try await RolloutTests.fleetOnV1()
        defer { fleet.release(); fleet.shutdown() }
        let v2 = try await RolloutTests.signedRelease(fleet, "v2")
        try fleet.hold()
        let rollout = try fleet.start(["rollout", v2, "--batch", "1", "--json"])
        try await rollout.waitForLine(containing: "\"host\":\"host-1\"", "\"phase\":\"activating\"")
        kill(rollout.process.processIdentifier, SIGINT)
        try await Task.sleep(for: .milliseconds(200))
        fleet.release()
        let status = await rollout.waitForExit()
        #expect(status == 1, "\(rollout.stderr)")
        let lastLine = try #require(rollout.output.last)
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(lastLine.utf8)) as? [String: Any])
        #expect(summary["haltReason"] as? String == "interrupted by the operator (SIGINT)")
        #expect(summary["reverted"] as? [String] == ["host-1"])
        for host in fleet.hostIDs { #expect(fleet.current(host) == "v1", "\(host)") }
        #expect(try await fleet.run(["lock", "list"]).stdout.contains("no locks held"))
        let history = try await fleet.run(["history", "show", try #require(summary["rolloutID"] as? String)])
        #expect(history.stdout.contains("halted: interrupted by the operator (SIGINT)"))
    }

    @Test("Ctrl-C during a --pause between batches acts at once: the switched hosts go back without waiting for the pause to end")
    func interruptDuringAPause() async throws {
        let fleet = try await RolloutTests.fleetOnV1(hosts: 3)
        defer { fleet.shutdown() }
        let v2 = try await RolloutTests.signedRelease(fleet, "v2")
        let rollout = try fleet.start(["rollout", v2, "--canary", "1", "--batch", "1", "--pause", "5m", "--json"])
        try await rollout.waitForLine(containing: "pausing 5m")
        let interrupted = ContinuousClock.now
        kill(rollout.process.processIdentifier, SIGINT)
        let status = await rollout.waitForExit(timeout: 60)
        let took = ContinuousClock.now - interrupted
        #expect(status == 1, "\(rollout.stderr)")
        #expect(took < .seconds(30), "the rollout waited \(took) after Ctrl-C")
        for host in fleet.hostIDs { #expect(fleet.current(host) == "v1", "\(host)") }
        #expect(try await fleet.run(["lock", "list"]).stdout.contains("no locks held"))
    }
}
