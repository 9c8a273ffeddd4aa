import BatonTestSupport
import Foundation
import Testing

/// A change freeze that begins while a rollout is paused: `resume` is refused before any
/// agent is contacted, and `baton plan --json` carries the freeze on every row.
@Suite("change freezes and resumed rollouts", .serialized)
struct FreezeResumeTests {
    @Test("a freeze that began during the pause holds the resume; plan --json shows it")
    func resumeRechecksTheFreeze() async throws {
        let fleet = try await RolloutTests.fleetOnV1(hosts: 2)
        defer { fleet.shutdown() }
        let v2 = try await RolloutTests.signedRelease(fleet, "v2")
        let paused = try RolloutTests.JSONRun(try await fleet.run(["rollout", v2, "--canary", "1", "--pause-after-canary", "--json"]))
        #expect(paused.status == 5)
        let rolloutID = try #require(paused.summary["rolloutID"] as? String)
        #expect(fleet.current("host-1") == "v2")
        try await ChangeFreezeTests.freezeStaging(fleet)

        let resumed = try await fleet.run(["rollout", "resume", rolloutID, "--plain"])
        #expect(resumed.status == 2, "\(resumed.stdout)\n\(resumed.stderr)")
        #expect(resumed.stderr.contains("change_frozen"), "\(resumed.stderr)")
        #expect(resumed.stderr.contains("end-of-year trading"), "\(resumed.stderr)")
        #expect(fleet.current("host-2") == "v1")
        // Refused before anything was contacted: no agent saw it.
        let audit = try ChangeFreezeTests.auditLines(fleet, "host-2")
        #expect(!audit.contains { $0["result"] as? String == "change_frozen" })

        let plan = try await fleet.run(["plan", v2, "--json"])
        let rows = try plan.stdout.split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        #expect(rows.count == 2)
        for row in rows {
            let freeze = try #require(row["freeze"] as? [String: Any], "\(row)")
            #expect(freeze["environment"] as? String == "staging")
            #expect(freeze["reasons"] as? [String] == ["end-of-year trading"])
            #expect(freeze["breaksGlass"] as? Bool == false)
            #expect(freeze["until"] is String)
        }
    }
}
