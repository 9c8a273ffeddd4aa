import BatonTestSupport
import Foundation
import Testing

/// `baton deploy`, `release create` and `rollout` against five (or more) real `batond run`
/// processes on 127.0.0.1, with certificates from `baton pki`.
@Suite("Fleet rollouts", .serialized)
struct RolloutTests {
    /// v1 everywhere with `baton deploy` (line output), then the rollout under test.
    static func fleetOnV1(hosts: Int = 5, down: Set<String> = []) async throws -> LocalFleet {
        let fleet = try await LocalFleet.start(hosts: hosts, down: down)
        let v1 = try fleet.artifact("v1")
        let result = try await fleet.run(
            ["deploy", "web", "--artifact", v1, "--release", "v1", "--environment", "staging", "--key", "keys/ci.key", "--plain",
             "--failure-threshold", "\(down.count)"])
        #expect(result.status == (down.isEmpty ? 0 : 3), "deploy v1: \(result.stdout)\n\(result.stderr)")
        // Not a terminal: one line per event, every line a time stamp and text, then the summary.
        let lines = result.stdout.split(separator: "\n").map(String.init)
        let eventLines = lines.prefix { !$0.hasPrefix("rollout ") }
        #expect(eventLines.allSatisfy { $0.range(of: #"^\d\d:\d\d:\d\d "#, options: .regularExpression) != nil })
        #expect(!result.stdout.contains("\u{1B}["), "no escape codes when stdout is not a terminal")
        for host in fleet.hostIDs where !down.contains(host) {
            #expect(fleet.current(host) == "v1")
            #expect(eventLines.contains { $0.contains(" \(host) ") && $0.contains("succeeded") })
        }
        return fleet
    }

    /// Releases v2 through `release create`, `manifest sign`: the approval path.
    static func signedRelease(_ fleet: LocalFleet, _ name: String, healthy: Bool = true, failOn: [String] = []) async throws -> String {
        let artifact = try fleet.artifact(name, healthy: healthy, failOn: failOn)
        let created = try await fleet.run(
            ["release", "create", "web", "--artifact", artifact, "--release", name, "--environment", "staging", "--notes", "test \(name)",
             "-o", "\(name).manifest.json"])
        try #require(created.status == 0, "release create: \(created.stderr)")
        let signed = try await fleet.run(["manifest", "sign", "\(name).manifest.json", "--key", "keys/ci.key"])
        try #require(signed.status == 0, "sign: \(signed.stderr)")
        return "\(name).manifest.envelope.json"
    }

    struct JSONRun {
        var status: Int32
        var events: [[String: Any]]
        var summary: [String: Any]

        init(_ result: ProcessResult) throws {
            status = result.status
            var objects: [[String: Any]] = []
            for line in result.stdout.split(separator: "\n") {
                let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not JSON: \(line)")
                objects.append(object)
            }
            summary = try #require(objects.last, "no output; stderr: \(result.stderr)")
            #expect(summary["type"] as? String == "summary")
            events = Array(objects.dropLast())
        }

        /// Index of the first event for `host` in `phase`.
        func first(_ host: String, _ phase: String) -> Int? {
            events.firstIndex { $0["host"] as? String == host && $0["phase"] as? String == phase }
        }

        func last(_ host: String, _ phase: String) -> Int? {
            events.lastIndex { $0["host"] as? String == host && $0["phase"] as? String == phase }
        }

        func list(_ key: String) -> [String] { (summary[key] as? [String]) ?? [] }
    }

    @Test("a canary, then batches: every host on the new release, in the strategy's order")
    func rollingRollout() async throws {
        let fleet = try await Self.fleetOnV1()
        defer { fleet.shutdown() }
        let envelope = try await Self.signedRelease(fleet, "v2")
        let run = try JSONRun(try await fleet.run(
            ["rollout", envelope, "--canary", "1", "--batch", "2", "--parallel", "2", "--json"]))
        #expect(run.status == 0)
        #expect(run.summary["outcome"] as? String == "succeeded")
        #expect(Set(run.list("succeeded")) == Set(fleet.hostIDs))
        for host in fleet.hostIDs {
            #expect(fleet.current(host) == "v2", "\(host)")
            // Every host's agent phases are in the stream, in order.
            let phases = run.events.filter { $0["host"] as? String == host }.compactMap { $0["phase"] as? String }
            let expected = ["accepted", "fetching", "unpacking", "preparing", "switching", "activating", "checking", "succeeded"]
            let seen = phases.filter { expected.contains($0) }
            #expect(expected.allSatisfy { seen.contains($0) }, "\(host): \(phases)")
        }
        // The canary finished before anything else was started; batch 1 before batch 2.
        let canaryDone = try #require(run.last("host-1", "succeeded"))
        for host in ["host-2", "host-3", "host-4", "host-5"] {
            #expect(try #require(run.first(host, "uploading")) > canaryDone, "\(host) started before the canary finished")
        }
        let batch1Done = max(try #require(run.last("host-2", "succeeded")), try #require(run.last("host-3", "succeeded")))
        for host in ["host-4", "host-5"] {
            #expect(try #require(run.first(host, "uploading")) > batch1Done, "\(host) started before batch 1 finished")
        }
        let waves = run.events.filter { $0["type"] as? String == "wave" }.compactMap { $0["message"] as? String }
        #expect(waves == ["canary: host-1", "batch 1: host-2, host-3", "batch 2: host-4, host-5"])
    }

    @Test("--upload-parallel 1: every host deploys at once, but the artifact goes to one host at a time")
    func uploadsAreBounded() async throws {
        let fleet = try await Self.fleetOnV1()
        defer { fleet.shutdown() }
        let envelope = try await Self.signedRelease(fleet, "v2")
        let run = try JSONRun(try await fleet.run(["rollout", envelope, "--upload-parallel", "1", "--json"]))
        #expect(run.status == 0, "\(run.summary)")
        #expect(Set(run.list("succeeded")) == Set(fleet.hostIDs))
        // A host holds the slot from "checking for artifact" to "uploaded": the five
        // transfers never overlap, so in the stream each start follows the previous end.
        let transfers = run.events.compactMap { event -> String? in
            guard event["phase"] as? String == "uploading", let message = event["message"] as? String else { return nil }
            if message.hasPrefix("checking for artifact") { return "start" }
            if message.hasPrefix("uploaded ") { return "end" }
            return nil
        }
        #expect(transfers == Array(repeating: ["start", "end"], count: 5).flatMap { $0 }, "\(transfers)")
        // The others said they were waiting, and no one was held back from deploying
        // longer than the transfers ahead of it.
        #expect(run.events.contains { ($0["message"] as? String)?.hasPrefix("waiting for an upload slot (1 at a time)") == true })
        for host in fleet.hostIDs { #expect(fleet.current(host) == "v2", "\(host)") }
    }

    @Test("a health check failing on the canary: halted, the canary back on v1, no other host touched, exit 1")
    func canaryFailure() async throws {
        let fleet = try await Self.fleetOnV1()
        defer { fleet.shutdown() }
        let recordsBefore = try fleet.hostIDs.map { try fleet.records($0).count }
        let envelope = try await Self.signedRelease(fleet, "v3-broken", healthy: false)
        let run = try JSONRun(try await fleet.run(["rollout", envelope, "--canary", "1", "--batch", "2", "--json"]))
        #expect(run.status == 1)
        #expect(run.summary["outcome"] as? String == "failed")
        #expect(fleet.current("host-1") == "v1")
        let canary = try #require(try fleet.records("host-1").last)
        #expect(canary["release"] as? String == "v3-broken")
        #expect(canary["phase"] as? String == "rolled_back")
        for (index, host) in fleet.hostIDs.enumerated().dropFirst() {
            #expect(fleet.current(host) == "v1")
            #expect(try fleet.records(host).count == recordsBefore[index], "\(host) was touched")
        }
        #expect(Set(run.list("skipped")) == ["host-2", "host-3", "host-4", "host-5"])
        let failed = try #require(run.summary["failed"] as? [[String: Any]])
        #expect(failed.count == 1 && failed[0]["host"] as? String == "host-1")
    }

    @Test("failure threshold exceeded in the second batch: halted, every switched host reverted and healthy on v1")
    func thresholdExceededReverts() async throws {
        let fleet = try await Self.fleetOnV1()
        defer { fleet.shutdown() }
        let envelope = try await Self.signedRelease(fleet, "v4", failOn: ["host-4", "host-5"])
        let result = try await fleet.run(["rollout", envelope, "--canary", "1", "--batch", "2", "--failure-threshold", "1", "--plain"])
        #expect(result.status == 1, "\(result.stdout)\n\(result.stderr)")
        for host in fleet.hostIDs { #expect(fleet.current(host) == "v1", "\(host)") }
        for host in ["host-1", "host-2", "host-3"] {
            let revert = try #require(try fleet.records(host).last)
            #expect(revert["release"] as? String == "v1")
            #expect(revert["isRollback"] as? Bool == true)
            #expect(revert["phase"] as? String == "succeeded")
        }
        for host in ["host-4", "host-5"] {
            #expect(try fleet.records(host).last?["phase"] as? String == "rolled_back")
        }
        #expect(result.stdout.contains("failed and was reverted"))
        #expect(result.stdout.contains("reverted (3): host-1, host-2, host-3"))
        #expect(result.stdout.contains("host-4: rolled_back: health_check_failed") || result.stdout.contains("host-4: rolled_back"))
    }

    @Test("an agent down from the start and one killed mid-rollout: unreachable, the threshold decides, the summary names them")
    func unreachableHosts() async throws {
        let fleet = try await Self.fleetOnV1(down: ["host-5"])
        defer { fleet.shutdown() }
        let envelope = try await Self.signedRelease(fleet, "v2")
        let rollout = try fleet.start(["rollout", envelope, "--batch", "1", "--failure-threshold", "2", "--json"])
        try await rollout.waitForLine(containing: "\"host\":\"host-1\"", "\"phase\":\"succeeded\"")
        await fleet.kill("host-4")
        let status = await rollout.waitForExit()
        #expect(status == 3, "\(rollout.stderr)")
        let lastLine = try #require(rollout.output.last)
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(lastLine.utf8)) as? [String: Any])
        #expect(summary["outcome"] as? String == "needs_attention")
        #expect(Set((summary["unreachable"] as? [String]) ?? []) == ["host-4", "host-5"])
        #expect(Set((summary["succeeded"] as? [String]) ?? []) == ["host-1", "host-2", "host-3"])
        #expect(Set((summary["attention"] as? [String]) ?? []) == ["host-4", "host-5"])

        // With a threshold of 1 the same fleet halts and reverts what it switched.
        let v3 = try await Self.signedRelease(fleet, "v3")
        let halted = try JSONRun(try await fleet.run(["rollout", v3, "--batch", "2", "--failure-threshold", "1", "--json"]))
        #expect(halted.status == 3)
        #expect(halted.summary["halted"] as? Bool == true)
        for host in ["host-1", "host-2", "host-3"] { #expect(fleet.current(host) == "v2", "\(host)") }
    }

    @Test("bad input is refused before any agent is contacted, exit 2")
    func badInput() async throws {
        let fleet = try await LocalFleet.start(hosts: 5)
        defer { fleet.shutdown() }
        let artifact = try fleet.artifact("v1")
        let other = try fleet.artifact("v1-other")
        let created = try await fleet.run(["release", "create", "web", "--artifact", artifact, "--release", "v1", "--environment", "staging", "-o", "v1.json"])
        try #require(created.status == 0, "\(created.stderr)")
        _ = try await fleet.run(["manifest", "sign", "v1.json", "--key", "keys/ci.key"])
        let production = try await fleet.run(["release", "create", "web", "--artifact", artifact, "--release", "p1", "--environment", "production", "-o", "p1.json"])
        #expect(production.status == 2 && production.stderr.contains("no_hosts"), "\(production.stderr)")
        // A production envelope, made by hand the way an approver would.
        var manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: fleet.dir.child("v1.json")))) as? [String: Any])
        manifest["environment"] = "production"
        manifest["serial"] = 99
        try JSONSerialization.data(withJSONObject: manifest).write(to: URL(fileURLWithPath: fleet.dir.child("prod.json")))
        _ = try await fleet.run(["manifest", "sign", "prod.json", "--key", "keys/ci.key"])

        let recordsBefore = try fleet.hostIDs.map { try fleet.records($0).count }
        let cases: [(String, [String], String)] = [
            ("missing fleet file", ["rollout", "v1.envelope.json", "--fleet", "nowhere.yaml"], "file_not_found"),
            ("malformed fleet file", ["rollout", "v1.envelope.json", "--fleet", "bad-fleet.yaml"], "bad-fleet.yaml:3:"),
            ("envelope for another environment", ["rollout", "prod.envelope.json", "--environment", "staging"], "wrong_environment"),
            ("envelope for an environment without hosts", ["rollout", "prod.envelope.json"], "no_hosts"),
            ("artifact whose digest differs", ["rollout", "v1.envelope.json", "--artifact", other], "artifact_mismatch"),
            ("unknown host", ["rollout", "v1.envelope.json", "--hosts", "host-9"], "no_hosts"),
            ("bad strategy", ["rollout", "v1.envelope.json", "--batch", "0"], "invalid_strategy"),
            ("no upload slots", ["rollout", "v1.envelope.json", "--upload-parallel", "0"], "invalid_strategy"),
        ]
        try "hosts:\n  - id: host-1\n    address: nowhere\n    environment: staging\n".write(
            toFile: fleet.dir.child("bad-fleet.yaml"), atomically: false, encoding: .utf8)
        for (name, arguments, expected) in cases {
            let result = try await fleet.run(arguments)
            #expect(result.status == 2, "\(name): \(result.stdout) \(result.stderr)")
            #expect(result.stderr.hasPrefix("error: "), "\(name): \(result.stderr)")
            #expect(result.stderr.contains(expected), "\(name): \(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1, "\(name): one line: \(result.stderr)")
        }
        for (index, host) in fleet.hostIDs.enumerated() {
            #expect(try fleet.records(host).count == recordsBefore[index], "\(host) was contacted")
            #expect(fleet.current(host) == nil)
        }
    }

    @Test("an agent presenting another host's certificate is refused before any request, nothing deployed there")
    func agentIdentityIsChecked() async throws {
        let fleet = try await Self.fleetOnV1()
        defer { fleet.shutdown() }
        // The fleet file sends host-2's traffic to host-3's agent: a valid fleet
        // certificate, but not host-2's.
        let text = try String(contentsOfFile: fleet.dir.child("fleet.yaml"), encoding: .utf8)
        let port3 = try #require(fleet.daemons["host-3"]?.apiPort), port2 = try #require(fleet.daemons["host-2"]?.apiPort)
        try text.replacingOccurrences(of: "127.0.0.1:\(port2)", with: "127.0.0.1:\(port3)")
            .write(toFile: fleet.dir.child("fleet.yaml"), atomically: true, encoding: .utf8)
        let records3 = try fleet.records("host-3").count
        let envelope = try await Self.signedRelease(fleet, "v2")
        let run = try JSONRun(try await fleet.run(["rollout", envelope, "--hosts", "host-2", "--json"]))
        #expect(run.status == 3)
        let failed = try #require(run.summary["failed"] as? [[String: Any]])
        let error = try #require(failed.first?["error"] as? [String: Any])
        #expect(error["code"] as? String == "agent_identity_mismatch")
        #expect(try fleet.records("host-3").count == records3)
        #expect(fleet.current("host-3") == "v1")
    }

    @Test("--pause-after-canary stops after a healthy canary, exit 5, and says how to go on")
    func pauseAfterCanary() async throws {
        let fleet = try await Self.fleetOnV1()
        defer { fleet.shutdown() }
        let envelope = try await Self.signedRelease(fleet, "v2")
        let result = try await fleet.run(["rollout", envelope, "--canary", "1", "--pause-after-canary", "--plain"])
        #expect(result.status == 5, "\(result.stdout)")
        #expect(fleet.current("host-1") == "v2")
        for host in fleet.hostIDs.dropFirst() { #expect(fleet.current(host) == "v1") }
        #expect(result.stdout.contains("paused after the canary"))
        #expect(result.stdout.contains("next: baton rollout resume "))
    }
}
