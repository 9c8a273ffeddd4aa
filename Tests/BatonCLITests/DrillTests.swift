import BatonTestSupport
import Foundation
import Testing

/// `baton drill` on real agents: the way back practised and undone, also when the drill is
/// interrupted or an agent is killed under it.
@Suite("baton drill", .serialized)
struct DrillTests {
    /// Two hosts on v2, v1 before it; the app file asks for a drill every 30 days.
    static func fleetOnV2() async throws -> LocalFleet {
        let fleet = try await RolloutTests.fleetOnV1(hosts: 2)
        let v2 = try await RolloutTests.signedRelease(fleet, "v2")
        let rolled = try await fleet.run(["rollout", v2, "--plain"])
        try #require(rolled.status == 0, "\(rolled.stdout)\(rolled.stderr)")
        let appFile = fleet.dir.child("apps/web.yaml")
        try (String(contentsOfFile: appFile, encoding: .utf8) + "\ndrill: {maxAge: 30d}\n").write(toFile: appFile, atomically: false, encoding: .utf8)
        return fleet
    }

    static func object(_ text: String) throws -> [String: Any] {
        let line = try #require(text.split(separator: "\n").last)
        return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not JSON: \(text)")
    }

    /// web in staging, from `baton report --json`.
    static func reportRow(_ fleet: LocalFleet) async throws -> [String: Any] {
        let report = try await fleet.run(["report", "web", "--json"])
        try #require(report.status == 0, "\(report.stderr)")
        let rows = try #require(try Self.object(report.stdout)["rows"] as? [[String: Any]])
        return try #require(rows.first { $0["environment"] as? String == "staging" })
    }

    @Test("a drill takes one host to v1, health-checks it, brings it back to v2, and is recorded with its time to recover; status stops flagging it")
    func successfulDrill() async throws {
        let fleet = try await Self.fleetOnV2()
        defer { fleet.shutdown() }
        let due = try await fleet.run(["status", "web"])
        #expect(due.status == 1, "\(due.stdout)")
        #expect(due.stdout.contains("DRILL DUE: web in staging: never drilled"), "\(due.stdout)")
        let dueJSON = try await fleet.run(["status", "web", "--json"])
        let rows = try dueJSON.stdout.split(separator: "\n").map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        #expect(rows.count == 2 && rows.allSatisfy { ($0["drillDue"] as? [String: Any])?["environment"] as? String == "staging" }, "\(dueJSON.stdout)")

        let drill = try await fleet.run(["drill", "web", "--environment", "staging", "--json"])
        #expect(drill.status == 0, "\(drill.stdout)\(drill.stderr)")
        let record = try Self.object(drill.stdout)
        #expect(record["kind"] as? String == "drill")
        #expect(record["outcome"] as? String == "succeeded")
        let recover = try #require(record["timeToRecover"] as? Double)
        #expect(recover > 0 && recover < 30)
        let hosts = try #require(record["hosts"] as? [[String: Any]])
        #expect(hosts.map { $0["host"] as? String } == ["host-1"], "one host by default")
        #expect(hosts.first?["original"] as? String == "v2" && hosts.first?["previous"] as? String == "v1" && hosts.first?["final"] as? String == "v2")
        #expect((record["rollouts"] as? [String])?.count == 2)

        // host-1 went to v1 (a return, health-checked) and back to v2; host-2 was not touched.
        #expect(fleet.current("host-1") == "v2" && fleet.current("host-2") == "v2")
        let records = try fleet.records("host-1").suffix(2)
        #expect(records.map { $0["release"] as? String } == ["v1", "v2"])
        #expect(records.allSatisfy { $0["isRollback"] as? Bool == true && $0["phase"] as? String == "succeeded" })
        #expect(records.allSatisfy { !(($0["healthAttempts"] as? [Any]) ?? []).isEmpty })
        #expect(try fleet.records("host-2").count == 2)

        // The legs are in the history as rollouts of kind drill; they are not deployments.
        let history = try await fleet.run(["history", "web", "--json"])
        let rollouts = try #require(try JSONSerialization.jsonObject(with: Data(history.stdout.utf8)) as? [[String: Any]])
        #expect(rollouts.prefix(2).allSatisfy { $0["kind"] as? String == "drill" }, "\(rollouts)")
        #expect(rollouts.dropFirst(2).allSatisfy { $0["kind"] as? String == "rollout" })
        let text = try await fleet.run(["history", "web"])
        let kinds = text.stdout.split(separator: "\n").dropFirst().map { $0.split(separator: " ", omittingEmptySubsequences: true)[4] }
        #expect(text.stdout.hasPrefix("ROLLOUT") && kinds == ["drill", "drill"] + Array(repeating: "rollout", count: kinds.count - 2), "\(text.stdout)")
        let row = try await Self.reportRow(fleet)
        #expect(row["deployments"] as? Int == 2 && row["drills"] as? Int == 1 && row["drillsSucceeded"] as? Int == 1, "\(row)")
        #expect(row["lastDrillOutcome"] as? String == "succeeded" && (row["drillTimeToRecover"] as? Double).map { $0 > 0 } == true, "\(row)")

        let table = try await fleet.run(["report"])
        #expect(table.status == 0 && table.stdout.contains("LAST DRILL"), "\(table.stdout)\(table.stderr)")
        let line = try #require(table.stdout.split(separator: "\n").first { $0.hasPrefix("web ") })
        #expect(line.contains("staging") && line.contains(" 0% (0/2)") && line.contains("ago, recovered in"), "\(line)")
        let badWindow = try await fleet.run(["report", "--since", "soon"])
        #expect(badWindow.status == 2 && badWindow.stderr.contains("error: usage:"), "\(badWindow.stderr)")

        let status = try await fleet.run(["status", "web"])
        #expect(status.status == 0, "\(status.stdout)")
        #expect(!status.stdout.contains("DRILL DUE"))
        #expect(try await fleet.run(["lock", "list"]).stdout.contains("no locks held"))
    }

    @Test("Ctrl-C or SIGTERM during the way back: the drill still brings the host forward to v2 before it exits (130, 143), recorded as interrupted", arguments: [SIGINT, SIGTERM])
    func interruptedDrill(signal: Int32) async throws {
        let fleet = try await Self.fleetOnV2()
        defer { fleet.release(); fleet.shutdown() }
        try fleet.hold()
        let drill = try fleet.start(["drill", "web", "--environment", "staging", "--plain"])
        try await drill.waitForLine(containing: "host-1", "activating:")
        kill(drill.process.processIdentifier, signal)
        try await drill.waitForLine(containing: signal == SIGTERM ? "SIGTERM received" : "SIGINT received", timeout: 10)
        fleet.release()
        let status = await drill.waitForExit(timeout: 60)
        #expect(status == 128 + signal, "\(drill.output.joined(separator: "\n"))\n\(drill.stderr)")
        #expect(fleet.current("host-1") == "v2")
        #expect(drill.output.contains { $0.contains("interrupted") }, "\(drill.output)")
        #expect(drill.output.contains { $0.contains("forward again") }, "\(drill.output)")
        let row = try await Self.reportRow(fleet)
        #expect(row["lastDrillOutcome"] as? String == "interrupted" && row["drillsSucceeded"] as? Int == 0, "\(row)")
        #expect(try await fleet.run(["lock", "list"]).stdout.contains("no locks held"))
    }

    @Test("an agent killed (kill -9) mid-drill and restarted: the host ends on v2 and the drill is recorded failed with the reason")
    func agentKilledMidDrill() async throws {
        let fleet = try await Self.fleetOnV2()
        defer { fleet.release(); fleet.shutdown() }
        try fleet.hold()
        let drill = try fleet.start(["drill", "web", "--environment", "staging", "--plain", "--recovery-wait", "30s"])
        try await drill.waitForLine(containing: "host-1", "activating:")
        await fleet.kill("host-1")
        fleet.release()
        try await fleet.restartOnSamePort("host-1")
        let status = await drill.waitForExit(timeout: 90)
        let output = drill.output.joined(separator: "\n")
        #expect(status == 1, "\(output)\n\(drill.stderr)")
        #expect(fleet.current("host-1") == "v2", "\(output)")
        #expect(output.contains("drill-") && output.contains("failed"), "\(output)")
        #expect(output.contains("host-1: the way back to v1 ended"), "the reason names the host and the leg: \(output)")
        #expect(output.contains("every host is back on the release it was on"), "\(output)")
        let row = try await Self.reportRow(fleet)
        #expect(row["lastDrillOutcome"] as? String == "failed", "\(row)")
        #expect((row["lastDrillReason"] as? String)?.contains("host-1: the way back to v1 ended") == true, "\(row)")
        // Not a successful drill: status still flags the app.
        let flagged = try await fleet.run(["status", "web"])
        #expect(flagged.stdout.contains("DRILL DUE"), "\(flagged.stdout)")
    }

    @Test("an agent that stays down past --recovery-wait: the drill exits 3 naming the host; once it is back, status shows it on v2 and a drill runs again")
    func agentStaysDown() async throws {
        let fleet = try await Self.fleetOnV2()
        defer { fleet.release(); fleet.shutdown() }
        try fleet.hold()
        let drill = try fleet.start(["drill", "web", "--environment", "staging", "--plain", "--recovery-wait", "1s"])
        try await drill.waitForLine(containing: "host-1", "activating:")
        await fleet.kill("host-1")
        fleet.release()
        let exit = await drill.waitForExit(timeout: 90)
        let output = drill.output.joined(separator: "\n")
        #expect(exit == 3, "\(output)\n\(drill.stderr)")
        #expect(output.contains("needs_attention") && output.contains("NEEDS ATTENTION"), "\(output)")
        #expect(output.contains("host-1 did not answer after the drill (it was on v2)"), "\(output)")
        #expect(output.contains("baton rollback web --environment staging --to v2 --hosts host-1"), "\(output)")
        #expect(try await Self.reportRow(fleet)["lastDrillOutcome"] as? String == "needs_attention")

        // Back up, the agent settles the interrupted return: host-1 is on v2 again.
        try await fleet.restartOnSamePort("host-1")
        #expect(fleet.current("host-1") == "v2")
        let again = try await fleet.run(["drill", "web", "--environment", "staging", "--json"])
        #expect(again.status == 0, "\(again.stdout)\(again.stderr)")
        #expect(fleet.current("host-1") == "v2")
        let status = try await fleet.run(["status", "web"])
        #expect(status.status == 0, "no drift, no drill due: \(status.stdout)")
        #expect(status.stdout.split(separator: "\n").contains { $0.hasPrefix("host-1") && $0.contains(" v2 ") }, "\(status.stdout)")
    }

    @Test("the drill's own controller killed (kill -9) after sending the way back: the next drill puts the host back on v2 first, then drills")
    func controllerKilledMidDrill() async throws {
        let fleet = try await Self.fleetOnV2()
        defer { fleet.release(); fleet.shutdown() }
        try fleet.hold()
        let killed = try fleet.start(["drill", "web", "--environment", "staging", "--plain"])
        try await killed.waitForLine(containing: "host-1", "activating:")
        kill(killed.process.processIdentifier, SIGKILL)
        _ = await killed.waitForExit(timeout: 10)
        fleet.release()
        // The agent finishes the return on its own: host-1 is left on v1.
        let deadline = Date().addingTimeInterval(30)
        func settledOnV1() throws -> Bool {
            let phase = try fleet.records("host-1").last?["phase"] as? String
            return fleet.current("host-1") == "v1" && phase == "succeeded"
        }
        while try !settledOnV1(), Date() < deadline {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(fleet.current("host-1") == "v1")
        // The dead controller's lease would hold the lock for a minute.
        #expect(try await fleet.run(["lock", "break", "web", "staging", "--reason", "drill controller killed"]).status == 0)

        let again = try await fleet.run(["drill", "web", "--environment", "staging", "--plain"])
        #expect(again.status == 0, "\(again.stdout)\(again.stderr)")
        #expect(again.stdout.contains("did not end (its controller stopped): host-1 is on v1, was on v2; putting it back first"), "\(again.stdout)")
        #expect(fleet.current("host-1") == "v2")
        let releases = try fleet.records("host-1").suffix(4).map { $0["release"] as? String }
        #expect(releases == ["v1", "v2", "v1", "v2"], "put back, then the drill's own way back and forward: \(releases)")
    }

    @Test("refused with stable codes: no previous release, the lock held, a change freeze")
    func refusals() async throws {
        let fleet = try await RolloutTests.fleetOnV1(hosts: 1)
        defer { fleet.release(); fleet.shutdown() }
        let none = try await fleet.run(["drill", "web", "--environment", "staging"])
        #expect(none.status == 1)
        #expect(none.stderr.contains("error: no_previous_release:"), "\(none.stderr)")

        let v2 = try await RolloutTests.signedRelease(fleet, "v2")
        try fleet.hold()
        let rollout = try fleet.start(["rollout", v2, "--plain"])
        try await rollout.waitForLine(containing: "host-1", "activating:")
        let locked = try await fleet.run(["drill", "web", "--environment", "staging"])
        #expect(locked.status == 4)
        #expect(locked.stderr.contains("error: lock_held:"), "\(locked.stderr)")
        fleet.release()
        #expect(await rollout.waitForExit(timeout: 60) == 0)

        try await ChangeFreezeTests.freezeStaging(fleet)
        let frozen = try await fleet.run(["drill", "web", "--environment", "staging"])
        #expect(frozen.status == 2)
        #expect(frozen.stderr.contains("error: change_frozen:") && frozen.stderr.contains("end-of-year trading"), "\(frozen.stderr)")
        #expect(fleet.current("host-1") == "v2")
        #expect(try fleet.records("host-1").count == 2, "nothing was sent")
    }
}
