import BatonTestSupport
import Foundation
import Testing

/// Two controllers with separate state directories and one PostgreSQL history, as two CI
/// runners of a team would be, against five real agents.
@Suite("A shared PostgreSQL history", .serialized)
struct SharedHistoryTests {
    @Test("the second controller sees the first's rollouts and is locked out while the first's rollout runs")
    func twoControllers() async throws {
        let fleet = try await RolloutTests.fleetOnV1()
        defer { fleet.release(); fleet.shutdown() }
        let database = try PostgresServer.createDatabase()
        // Every controller run in the fleet directory now uses the shared store.
        let config = try String(contentsOfFile: fleet.dir.child("baton.yaml"), encoding: .utf8)
        try (config + "\nhistory: {postgres: \"\(database)\", tls: disable}\n")
            .write(toFile: fleet.dir.child("baton.yaml"), atomically: true, encoding: .utf8)
        let otherState = fleet.dir.child("other-runner-state")

        let migrations = try await fleet.run(["history", "migrations", "--state-dir", otherState])
        #expect(migrations.status == 0 && migrations.stdout.contains("1 history and fenced locks"), "\(migrations.stdout) \(migrations.stderr)")

        let v2 = try await RolloutTests.signedRelease(fleet, "v2")
        try fleet.hold()
        let first = try fleet.start(["rollout", v2, "--json"])
        try await first.waitForLine(containing: "\"phase\":\"activating\"")
        // The artifact's bytes are per runner still: the second is handed them.
        let second = try await fleet.run(["rollout", v2, "--artifact", "v2.tar.gz", "--plain", "--state-dir", otherState])
        #expect(second.status == 4, "\(second.stdout) \(second.stderr)")
        #expect(second.stderr.hasPrefix("error: lock_held: rollout "), "\(second.stderr)")
        let locks = try await fleet.run(["lock", "list", "--state-dir", otherState])
        #expect(locks.stdout.contains("web staging: rollout "), "\(locks.stdout)")
        fleet.release()
        #expect(await first.waitForExit() == 0)

        // The other runner's history is the first's: v2 succeeded, recorded by the first.
        let list = try await fleet.run(["history", "web", "--json", "--state-dir", otherState])
        #expect(list.status == 0, "\(list.stderr)")
        let rollouts = try #require(try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]])
        #expect(rollouts.map { $0["release"] as? String } == ["v2"])
        #expect(rollouts.first?["outcome"] as? String == "succeeded")
        #expect(try await fleet.run(["lock", "list", "--state-dir", otherState]).stdout.contains("no locks held"))
        // And so are the lock events: the first runner acquired and released it.
        let events = try await fleet.run(["lock", "list", "--events", "--json", "--state-dir", otherState])
        #expect(events.stdout.contains("\"acquired\"") && events.stdout.contains("\"released\""), "\(events.stdout)")
    }
}
