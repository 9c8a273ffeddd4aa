import BatonTestSupport
import Foundation
import Testing

/// `baton rollout --fetch`: the controller uploads nothing, and two real `batond run`
/// agents fetch the artifact from a real nginx over HTTPS, trusting it through the fleet
/// CA that issued its certificate.
@Suite("Rollouts where agents fetch", .serialized)
struct FetchRolloutTests {
    /// `release create`, then `artifact.url` added to the manifest before it is signed.
    static func release(_ fleet: LocalFleet, _ name: String, artifact: String, url: String?) async throws -> String {
        let created = try await fleet.run(
            ["release", "create", "web", "--artifact", artifact, "--release", name, "--environment", "staging", "-o", "\(name).manifest.json"])
        try #require(created.status == 0, "release create: \(created.stderr)")
        if let url {
            let path = fleet.dir.child("\(name).manifest.json")
            var manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
            var reference = try #require(manifest["artifact"] as? [String: Any])
            reference["url"] = url
            manifest["artifact"] = reference
            try JSONSerialization.data(withJSONObject: manifest).write(to: URL(fileURLWithPath: path))
        }
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
}
