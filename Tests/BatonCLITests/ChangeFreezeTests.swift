import BatonTestSupport
import Foundation
import Testing

/// A change freeze on a real fleet: the controller refuses a rollout before it contacts
/// any agent, `baton plan` says why, and a break-glass envelope goes out, marked in the
/// agents' audit logs and the controller's history.
@Suite("change freezes", .serialized)
struct ChangeFreezeTests {
    static func rfc3339(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }

    /// Freezes staging for the next hour (a second key, `approver`, makes break-glass
    /// possible: threshold 1, so two distinct keys), and restarts the agents on it.
    static func freezeStaging(_ fleet: LocalFleet) async throws {
        let made = try await fleet.run(["keys", "generate", "approver", "--dir", "keys"])
        try #require(made.status == 0, "keys generate: \(made.stderr)")
        let now = Date()
        try """
            keys:
              ci: keys/ci.pub
              approver: keys/approver.pub
            environments:
              staging:
                threshold: 1
                keys: [ci, approver]
                rollbackThreshold: 1
                freezes:
                  - from: "\(rfc3339(now.addingTimeInterval(-3600)))"
                    until: "\(rfc3339(now.addingTimeInterval(3600)))"
                    reason: "end-of-year trading"
              production: {threshold: 1, keys: [ci], rollbackThreshold: 1}
            """.write(toFile: fleet.dir.child("trust-policy.yaml"), atomically: false, encoding: .utf8)
        for host in fleet.hostIDs {
            await fleet.kill(host)
            try await fleet.restart(host)
        }
    }

    static func auditLines(_ fleet: LocalFleet, _ host: String) throws -> [[String: Any]] {
        let text = try String(contentsOfFile: fleet.dir.child("hosts/\(host)/data/state/audit.log"), encoding: .utf8)
        return try text.split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    @Test("a frozen rollout is refused before any agent is contacted; a break-glass one is deployed and marked")
    func frozenThenBreakGlass() async throws {
        let fleet = try await RolloutTests.fleetOnV1(hosts: 2)
        defer { fleet.shutdown() }
        let v2 = try await RolloutTests.signedRelease(fleet, "v2")
        try await Self.freezeStaging(fleet)
        let auditBefore = try fleet.hostIDs.map { try Self.auditLines(fleet, $0).count }

        // Signed by ci alone: the threshold, not break-glass. Refused by the controller.
        let refused = try await fleet.run(["rollout", v2, "--plain"])
        #expect(refused.status == 2, "\(refused.stdout)\n\(refused.stderr)")
        #expect(refused.stderr.contains("change_frozen"), "\(refused.stderr)")
        #expect(refused.stderr.contains("end-of-year trading"), "\(refused.stderr)")
        #expect(refused.stderr.contains("2 distinct approvals"), "\(refused.stderr)")
        // No agent saw it: their audit logs did not grow (an agent audits every refusal).
        #expect(try fleet.hostIDs.map { try Self.auditLines(fleet, $0).count } == auditBefore)
        for host in fleet.hostIDs { #expect(fleet.current(host) == "v1") }
        #expect(!(try await fleet.run(["history"]).stdout.contains("v2")), "a refused rollout leaves no history")

        // The plan says the environment is frozen, until when and why, and that this envelope does not break glass.
        let plan = try await fleet.run(["plan", v2])
        #expect(plan.status == 1, "every host would refuse: \(plan.stdout)")
        #expect(plan.stdout.contains("environment staging is frozen until "), "\(plan.stdout)")
        #expect(plan.stdout.contains("end-of-year trading"))
        #expect(plan.stdout.contains("break glass: no"))
        #expect(plan.stdout.contains("refused: change_frozen"))

        // The agent enforces the freeze itself, whoever sends the manifest: `batond apply` on host-2.
        await fleet.kill("host-2")
        let applied = try await fleet.batond("host-2", ["apply", "--envelope", v2, "--artifact", fleet.dir.child("v2.tar.gz")])
        #expect(applied.status != 0)
        #expect(applied.stderr.contains("change_frozen"), "\(applied.stdout)\(applied.stderr)")
        let refusal = try #require(try Self.auditLines(fleet, "host-2").last)
        #expect(refusal["event"] as? String == "refused")
        #expect(refusal["result"] as? String == "change_frozen")
        try await fleet.restart("host-2")
        #expect(fleet.current("host-2") == "v1")

        // A second approver signs: threshold + 1 breaks glass.
        #expect(try await fleet.run(["manifest", "sign", v2, "--key", "keys/approver.key"]).status == 0)
        let breakGlassPlan = try await fleet.run(["plan", v2])
        #expect(breakGlassPlan.status == 0, "\(breakGlassPlan.stdout)")
        #expect(breakGlassPlan.stdout.contains("break glass: yes"), "\(breakGlassPlan.stdout)")

        let run = try RolloutTests.JSONRun(try await fleet.run(["rollout", v2, "--json"]))
        #expect(run.status == 0, "\(run.summary)")
        for host in fleet.hostIDs {
            #expect(fleet.current(host) == "v2")
            let accepted = try #require(try Self.auditLines(fleet, host).last { $0["event"] as? String == "accepted" })
            #expect(accepted["release"] as? String == "v2")
            #expect(accepted["breakGlass"] as? Bool == true, "\(accepted)")
            #expect((accepted["message"] as? String)?.contains("breaking glass") == true)
        }
        // The v1 deployment, before the freeze, is not marked.
        let v1Line = try #require(try Self.auditLines(fleet, "host-1").first { $0["event"] as? String == "accepted" })
        #expect(v1Line["breakGlass"] == nil)

        let rolloutID = try #require(run.summary["rolloutID"] as? String)
        let shown = try await fleet.run(["history", "show", rolloutID])
        #expect(shown.stdout.contains("BREAK GLASS"), "\(shown.stdout)")
        let json = try await fleet.run(["history", "show", rolloutID, "--json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect((object["rollout"] as? [String: Any])?["breakGlass"] as? Bool == true)
    }
}
