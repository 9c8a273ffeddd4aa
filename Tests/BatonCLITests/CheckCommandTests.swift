import BatonTestSupport
import Foundation
import Testing

/// `baton check` finds the mistakes of a controller's files before a rollout does, and
/// contacts agents only when asked.
@Suite("baton check")
struct CheckCommandTests {
    @Test("every file checked without contacting an agent; a bad app file and a down host are named; --reach asks each host once")
    func checksFilesThenHosts() async throws {
        let fleet = try await LocalFleet.start(hosts: 2)
        defer { fleet.shutdown() }

        let clean = try await fleet.run(["check", "--reach"])
        #expect(clean.status == 0, "\(clean.stdout)\(clean.stderr)")
        for part in ["ok    trust policy", "ok    fleet: 2 host(s)", "ok    app web", "ok    TLS credentials", "ok    host host-1", "ok    host host-2"] {
            #expect(clean.stdout.contains(part), "\(part) in \(clean.stdout)")
        }

        // An app file whose `app:` is another app's, and a host that is down.
        let web = try String(contentsOfFile: fleet.root + "/apps/web.yaml", encoding: .utf8)
        try web.write(toFile: fleet.root + "/apps/webb.yaml", atomically: false, encoding: .utf8)
        await fleet.kill("host-2")
        let offline = try await fleet.run(["check"])
        #expect(offline.status == 1, "\(offline.stdout)")
        #expect(offline.stdout.contains("FAIL  app webb: app_file_mismatch"), "\(offline.stdout)")
        #expect(!offline.stdout.contains("host host-"), "no agent is contacted without --reach: \(offline.stdout)")

        try FileManager.default.removeItem(atPath: fleet.root + "/apps/webb.yaml")
        let reached = try await fleet.run(["check", "--reach"])
        #expect(reached.status == 1, "\(reached.stdout)")
        #expect(reached.stdout.contains("ok    host host-1"), "\(reached.stdout)")
        #expect(reached.stdout.contains("FAIL  host host-2"), "\(reached.stdout)")
        let json = try await fleet.run(["check", "--json"])
        let report = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any], "\(json.stdout)")
        #expect(report["ok"] as? Bool == true)
        #expect(((report["checks"] as? [[String: Any]]) ?? []).count >= 5)
    }
}
