import BatonTestSupport
import Foundation
import Testing

/// Looking at a host without curl: what it holds of an app, and what its last
/// deployment did, hook output included.
@Suite("baton releases and baton logs")
struct LookingAtAHostTests {
    @Test("releases lists current, the way back and the rest per host; logs prints events and hook output")
    func releasesAndLogs() async throws {
        let fleet = try await RolloutTests.fleetOnV1(hosts: 2)
        defer { fleet.shutdown() }
        for release in ["v2", "v3"] {
            let deployed = try await fleet.run(
                ["deploy", "web", "--artifact", try fleet.artifact(release), "--release", release, "--environment", "staging",
                 "--key", "keys/ci.key", "--plain"])
            #expect(deployed.status == 0, "\(deployed.stdout)\(deployed.stderr)")
        }

        let table = try await fleet.run(["releases", "web", "--environment", "staging"])
        #expect(table.status == 0, "\(table.stdout)\(table.stderr)")
        let hostLine = try #require(table.stdout.split(separator: "\n").first { $0.hasPrefix("host-1") })
        #expect(hostLine.split(separator: " ", omittingEmptySubsequences: true).map(String.init) == ["host-1", "v3", "v2", "v1"], "\(table.stdout)")

        let json = try await fleet.run(["releases", "web", "--environment", "staging", "--hosts", "host-2", "--json"])
        let row = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(row["host"] as? String == "host-2")
        #expect(((row["held"] as? [[String: Any]]) ?? []).compactMap { $0["release"] as? String } == ["v3", "v2", "v1"])
        #expect(((row["liveHistory"] as? [[String: Any]]) ?? []).compactMap { $0["release"] as? String } == ["v3", "v2", "v1"])

        let logs = try await fleet.run(["logs", "host-1", "web"])
        #expect(logs.status == 0, "\(logs.stdout)\(logs.stderr)")
        #expect(logs.stdout.hasPrefix("web-"), "\(logs.stdout)")
        #expect(logs.stdout.contains("v3") && logs.stdout.contains("succeeded"), "\(logs.stdout)")
        #expect(logs.stdout.contains("== activate hook of v3 (exit 0"), "\(logs.stdout)")

        let missing = try await fleet.run(["logs", "host-1", "web", "web-999"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("not_found"), "\(missing.stderr)")
        let unknown = try await fleet.run(["logs", "host-9", "web"])
        #expect(unknown.stderr.contains("unknown_host"), "\(unknown.stderr)")
    }
}
