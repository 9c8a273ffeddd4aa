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
        #expect(unknown.stderr.contains("(v1)"), "names the releases the host could return to: \(unknown.stderr)")
    }

    @Test("the way back is the release live before: v1 → v2 → v3 → rollback --to v1 → v4 (its canary aborted, then all) → rollback lands on v1")
    func wayBackFollowsLiveHistory() async throws {
        let fleet = try await RolloutTests.fleetOnV1(hosts: 2)
        defer { fleet.shutdown() }
        // One build per release: tar.gz carries a timestamp, and a release name is bound
        // to its bytes.
        var built: [String: String] = [:]
        func deploy(_ release: String, _ extra: [String] = []) async throws -> ProcessResult {
            let artifact = try built[release] ?? fleet.artifact(release)
            built[release] = artifact
            return try await fleet.run(
                ["deploy", "web", "--artifact", artifact, "--release", release, "--environment", "staging", "--key", "keys/ci.key",
                 "--plain"] + extra)
        }
        for release in ["v2", "v3"] { #expect(try await deploy(release).status == 0) }
        let toV1 = try await fleet.run(["rollback", "web", "--environment", "staging", "--to", "v1", "--plain"])
        #expect(toV1.status == 0, "\(toV1.stdout)\(toV1.stderr)")
        for host in fleet.hostIDs { #expect(fleet.current(host) == "v1") }

        // v4's canary, then abort: the canary goes back to v1, the release live before it
        // (the app keeps 3 releases; by install order v1 would be the one deleted).
        let paused = try await deploy("v4", ["--canary", "1", "--pause-after-canary", "--json"])
        #expect(paused.status == 5, "\(paused.stdout)\(paused.stderr)")
        let lastLine = try #require(paused.stdout.split(separator: "\n").last)
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(lastLine.utf8)) as? [String: Any])
        let id = try #require(summary["rolloutID"] as? String)
        let state = try fleet.appState("host-1")
        #expect(state["previous"] as? String == "v1", "\(state)")
        let aborted = try await fleet.run(["rollout", "abort", id, "--plain"])
        #expect(aborted.status == 1, "\(aborted.stdout)\(aborted.stderr)")
        for host in fleet.hostIDs { #expect(fleet.current(host) == "v1", "\(host)") }
        let revert = try #require(try fleet.records("host-1").last)
        #expect(revert["release"] as? String == "v1")
        #expect(revert["isRollback"] as? Bool == true)
        // The revert ran v1's approved activate hook and health checks.
        #expect(((revert["hooks"] as? [[String: Any]]) ?? []).map { $0["hook"] as? String } == ["activate"])
        #expect(!((revert["healthAttempts"] as? [Any]) ?? []).isEmpty)

        let again = try await deploy("v4")
        #expect(again.status == 0, "\(again.stdout)\(again.stderr)")
        let back = try await fleet.run(["rollback", "web", "--environment", "staging", "--plain"])
        #expect(back.status == 0, "\(back.stdout)\(back.stderr)")
        for host in fleet.hostIDs {
            #expect(fleet.current(host) == "v1", "\(host)")
            let history = ((try fleet.appState(host)["liveHistory"] as? [[String: Any]]) ?? []).compactMap { $0["release"] as? String }
            #expect(history.suffix(3) == ["v1", "v4", "v1"], "\(host): \(history)")
            #expect(Set(fleet.approvedReleases(host)).isSuperset(of: ["v1", "v4"]), "\(host)")
        }
    }
}
