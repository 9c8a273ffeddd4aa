import BatonTestSupport
import Foundation
import Testing

/// `baton rollout --fetch`: the controller uploads nothing, and two real `batond run`
/// agents fetch the artifact from a real nginx over HTTPS, trusting it through the fleet
/// CA that issued its certificate.
@Suite("Rollouts where agents fetch", .serialized)
struct FetchRolloutTests {
    /// `release create --url` (the manifest's `artifact.url`), then signed.
    static func release(_ fleet: LocalFleet, _ name: String, artifact: String, url: String?) async throws -> String {
        let created = try await fleet.run(
            ["release", "create", "web", "--artifact", artifact, "--release", name, "--environment", "staging", "-o", "\(name).manifest.json"]
                + (url.map { ["--url", $0] } ?? []))
        try #require(created.status == 0, "release create: \(created.stderr)")
        let written = try Data(contentsOf: URL(fileURLWithPath: fleet.dir.child("\(name).manifest.json")))
        let manifest = try #require(try JSONSerialization.jsonObject(with: written) as? [String: Any])
        #expect((manifest["artifact"] as? [String: Any])?["url"] as? String == url)
        let signed = try await fleet.run(["manifest", "sign", "\(name).manifest.json", "--key", "keys/ci.key"])
        try #require(signed.status == 0, "sign: \(signed.stderr)")
        return "\(name).manifest.envelope.json"
    }

    @Test("--fetch: nothing uploaded, every agent fetches from nginx and the rollout succeeds")
    func rolloutWithFetch() async throws {
        let fleet = try await LocalFleet.start(hosts: 2)
        defer { fleet.shutdown() }
        // A certificate of the fleet CA for 127.0.0.1: host-1's serves nginx as well.
        let tls = fleet.dir.child("hosts/host-1/tls")
        let nginx = try NginxServer(tls: .init(certificate: "\(tls)/host-1.pem", key: "\(tls)/host-1.key"))
        defer { nginx.stop() }
        let v1 = try fleet.artifact("v1")
        try nginx.serve(v1, at: "/builds/web-v1.tar.gz")
        let envelope = try await Self.release(fleet, "v1", artifact: v1, url: nginx.url("/builds/web-v1.tar.gz"))

        // The plan says who would fetch, not upload.
        let plan = try await fleet.run(["rollout", envelope, "--fetch", "--dry-run"])
        #expect(plan.status == 0, "\(plan.stdout)\n\(plan.stderr)")
        let rows = plan.stdout.split(separator: "\n").filter { $0.hasPrefix("host-") }
        #expect(rows.count == 2 && rows.allSatisfy { $0.contains(" fetch ") }, "\(plan.stdout)")
        let json = try await fleet.run(["rollout", envelope, "--fetch", "--dry-run", "--json"])
        let planned = json.stdout.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        #expect(planned.count == 2 && planned.allSatisfy { $0["fetch"] as? Bool == true && $0["upload"] as? Bool == false }, "\(json.stdout)")

        let result = try await fleet.run(["rollout", envelope, "--fetch", "--json"])
        let run = try RolloutTests.JSONRun(result)
        #expect(run.status == 0, "\(result.stdout)\n\(result.stderr)")
        #expect(Set(run.list("succeeded")) == Set(fleet.hostIDs))
        for host in fleet.hostIDs {
            #expect(fleet.current(host) == "v1")
            let messages = run.events.filter { $0["host"] as? String == host }.compactMap { $0["message"] as? String }
            #expect(messages.contains { $0.hasPrefix("fetched and verified") && $0.contains(nginx.url("")) }, "\(host): \(messages)")
        }
        // The controller held the artifact (release create stored it) and still sent none.
        #expect(!run.events.contains { $0["phase"] as? String == "uploading" }, "\(run.events)")
        #expect(nginx.accessLog.filter { $0.hasPrefix("200 ") }.count == 2, "\(nginx.accessLog)")

        // Refused before any agent is contacted: --fetch without a URL, and with --artifact.
        let v2 = try fleet.artifact("v2")
        let noURL = try await Self.release(fleet, "v2", artifact: v2, url: nil)
        let missing = try await fleet.run(["rollout", noURL, "--fetch"])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("artifact_missing") && missing.stderr.contains("artifact.url"), "\(missing.stderr)")
        let both = try await fleet.run(["rollout", noURL, "--fetch", "--artifact", v2])
        #expect(both.status == 2)
        #expect(both.stderr.contains("--fetch and --artifact exclude each other"), "\(both.stderr)")
        for host in fleet.hostIDs { #expect(fleet.current(host) == "v1") }
    }

    @Test("deploy --url --fetch: one step, nothing uploaded; a URL that is not http(s) is refused before any agent is asked")
    func deployWithFetch() async throws {
        let fleet = try await LocalFleet.start(hosts: 2)
        defer { fleet.shutdown() }
        let tls = fleet.dir.child("hosts/host-1/tls")
        let nginx = try NginxServer(tls: .init(certificate: "\(tls)/host-1.pem", key: "\(tls)/host-1.key"))
        defer { nginx.stop() }
        let v1 = try fleet.artifact("v1")
        try nginx.serve(v1, at: "/builds/web-v1.tar.gz")

        let refused = try await fleet.run(
            ["deploy", "web", "--artifact", v1, "--release", "v1", "--environment", "staging", "--key", "keys/ci.key",
             "--url", "ftp://127.0.0.1/web-v1.tar.gz", "--fetch"])
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("invalid_value") && refused.stderr.contains("http:// or https://"), "\(refused.stderr)")
        let noURL = try await fleet.run(
            ["deploy", "web", "--artifact", v1, "--release", "v1", "--environment", "staging", "--key", "keys/ci.key", "--fetch"])
        #expect(noURL.status == 2)
        #expect(noURL.stderr.contains("--fetch needs --url"), "\(noURL.stderr)")
        #expect(nginx.accessLog.isEmpty, "\(nginx.accessLog)")

        let result = try await fleet.run(
            ["deploy", "web", "--artifact", v1, "--release", "v1", "--environment", "staging", "--key", "keys/ci.key",
             "--url", nginx.url("/builds/web-v1.tar.gz"), "--fetch", "--json"])
        let run = try RolloutTests.JSONRun(result)
        #expect(run.status == 0, "\(result.stdout)\n\(result.stderr)")
        #expect(Set(run.list("succeeded")) == Set(fleet.hostIDs))
        for host in fleet.hostIDs { #expect(fleet.current(host) == "v1") }
        #expect(!run.events.contains { $0["phase"] as? String == "uploading" }, "\(run.events)")
        #expect(nginx.accessLog.filter { $0.hasPrefix("200 ") }.count == 2, "\(nginx.accessLog)")
    }
}
