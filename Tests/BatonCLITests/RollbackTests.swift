import BatonTestSupport
import Foundation
import Testing

@Suite("baton rollback", .serialized)
struct RollbackTests {
    @Test("rollback returns the whole environment to the previous release at once, health-checked, recorded; --to names one")
    func rollbackEnvironment() async throws {
        let fleet = try await RolloutTests.fleetOnV1()
        defer { fleet.shutdown() }
        let v2 = try await RolloutTests.signedRelease(fleet, "v2")
        #expect(try await fleet.run(["rollout", v2, "--plain"]).status == 0)

        let back = try await fleet.run(["rollback", "web", "--environment", "staging", "--json"])
        #expect(back.status == 0, "\(back.stdout)\(back.stderr)")
        for host in fleet.hostIDs {
            #expect(fleet.current(host) == "v1", "\(host)")
            let record = try #require(try fleet.records(host).last)
            #expect(record["release"] as? String == "v1")
            #expect(record["isRollback"] as? Bool == true)
            #expect(record["phase"] as? String == "succeeded")
            // Health was checked again for the rollback.
            #expect(!((record["healthAttempts"] as? [Any]) ?? []).isEmpty, "\(host)")
        }
        // One wave, all hosts at once.
        let events = back.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(events.filter { $0["type"] as? String == "wave" }.count == 1)

        let history = try await fleet.run(["history", "web", "--json"])
        let rollouts = try #require(try JSONSerialization.jsonObject(with: Data(history.stdout.utf8)) as? [[String: Any]])
        #expect(rollouts.first?["release"] as? String == "v1")
        #expect(rollouts.first?["outcome"] as? String == "succeeded")
        #expect((rollouts.first?["notes"] as? String)?.hasPrefix("rollback by ") == true)

        let forward = try await fleet.run(["rollback", "web", "--environment", "staging", "--to", "v2", "--plain"])
        #expect(forward.status == 0, "\(forward.stdout)\(forward.stderr)")
        for host in fleet.hostIDs { #expect(fleet.current(host) == "v2", "\(host)") }

        let unknown = try await fleet.run(["rollback", "web", "--environment", "staging", "--to", "v9"])
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("release_not_on_host"))
    }
}
