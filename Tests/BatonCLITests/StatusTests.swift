import BatonTestSupport
import Foundation
import Testing

@Suite("baton status", .serialized)
struct StatusTests {
    @Test("status shows every host's release, serial, certificate and agent version, and drift after a host is rolled back by hand")
    func driftAfterManualRollback() async throws {
        let fleet = try await RolloutTests.fleetOnV1()
        defer { fleet.shutdown() }
        let v2 = try await RolloutTests.signedRelease(fleet, "v2")
        #expect(try await fleet.run(["rollout", v2, "--plain"]).status == 0)

        // An operator puts host-3 back on v1 by hand with `batond apply` (agent stopped).
        await fleet.kill("host-3")
        var manifest = try #require(try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: fleet.dir.child("state/releases/web/v1.manifest.json")))) as? [String: Any])
        manifest["serial"] = 100
        try JSONSerialization.data(withJSONObject: manifest).write(to: URL(fileURLWithPath: fleet.dir.child("back.json")))
        #expect(try await fleet.run(["manifest", "sign", "back.json", "--key", "keys/ci.key"]).status == 0)
        let applied = try await fleet.batond("host-3", ["apply", "--envelope", "back.envelope.json", "--artifact", fleet.dir.child("v1.tar.gz")])
        #expect(applied.status == 0, "\(applied.stdout)\(applied.stderr)")
        try await fleet.restart("host-3")
        await fleet.kill("host-5")

        let result = try await fleet.run(["status", "web", "--json"])
        #expect(result.status == 1, "drift and an unreachable host make status exit 1")
        let rows = try result.stdout.split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        #expect(rows.map { $0["host"] as? String } == fleet.hostIDs)
        for row in rows {
            let host = row["host"] as? String ?? ""
            if host == "host-5" {
                #expect(row["reachable"] as? Bool == false)
                #expect((row["error"] as? [String: Any])?["code"] as? String == "agent_unreachable")
                continue
            }
            #expect(row["reachable"] as? Bool == true)
            #expect(row["desired"] as? String == "v2")
            #expect(row["current"] as? String == (host == "host-3" ? "v1" : "v2"), "\(host)")
            #expect(row["drift"] as? Bool == (host == "host-3"), "\(host)")
            #expect(row["serial"] as? Int == (host == "host-3" ? 100 : 2), "\(host)")
            #expect((row["certificateDaysLeft"] as? Int ?? 0) > 390)
            #expect(row["certificateWarning"] as? Bool == false)
            #expect(row["agentVersion"] as? String != nil)
        }
        let text = try await fleet.run(["status", "web"])
        #expect(text.stdout.contains("drift (want v2)"))
        #expect(text.stdout.contains("host-5       UNREACHABLE: agent_unreachable"))
    }

    @Test("status marks a host whose agent cannot read the app's state (state_corrupt) and exits 1")
    func corruptStateOnAHost() async throws {
        let fleet = try await RolloutTests.fleetOnV1(hosts: 2)
        defer { fleet.shutdown() }
        let statePath = fleet.dir.child("hosts/host-2/data/state/apps/web.json")
        let good = try Data(contentsOf: URL(fileURLWithPath: statePath))
        #expect(try await fleet.run(["status", "web"]).status == 0)

        for corruption in StateCorruption.allCases {
            try good.write(to: URL(fileURLWithPath: statePath))
            try corruption.apply(to: statePath)
            for app in [["web"], []] {
                let result = try await fleet.run(["status", "--json"] + app)
                #expect(result.status == 1, "\(corruption): \(result.stdout)\(result.stderr)")
                let rows = try result.stdout.split(separator: "\n").map {
                    try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
                }
                let row = try #require(rows.first { $0["host"] as? String == "host-2" }, "\(result.stdout)")
                let error = row["stateError"] as? [String: Any]
                #expect(error?["code"] as? String == "state_corrupt", "\(corruption) \(app): \(row)")
                #expect((error?["message"] as? String)?.contains(statePath) == true)
                #expect(row["app"] as? String == "web")
                #expect(row["current"] as? String == "v1")
                let healthy = try #require(rows.first { $0["host"] as? String == "host-1" })
                #expect(healthy["stateError"] == nil)
            }
            let text = try await fleet.run(["status", "web"])
            #expect(text.status == 1)
            #expect(text.stdout.contains("STATE CORRUPT: state_corrupt"), "\(text.stdout)")
        }
    }
}
