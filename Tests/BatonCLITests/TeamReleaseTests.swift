import BatonTestSupport
import Foundation
import Testing

/// Team mode end to end: controllers with separate state directories (as separate
/// machines would have) sharing one PostgreSQL store, against real agents. One creates a
/// release, another approves it, a third rolls it out; serials come from the store's one
/// counter; a runner without the artifact's bytes is told where they are.
@Suite("Team mode: releases, approvals and serials in a shared store", .serialized)
struct TeamReleaseTests {
    /// A fleet on v1 whose controllers share a new PostgreSQL database (`extra` is added
    /// to the `history:` mapping, e.g. `lease: 3s`).
    static func sharedFleet(hosts: Int = 3, extra: String = "") async throws -> LocalFleet {
        let fleet = try await RolloutTests.fleetOnV1(hosts: hosts)
        let database = try PostgresServer.createDatabase()
        let config = try String(contentsOfFile: fleet.dir.child("baton.yaml"), encoding: .utf8)
        try (config + "\nhistory: {postgres: \"\(database)\", tls: disable\(extra)}\n")
            .write(toFile: fleet.dir.child("baton.yaml"), atomically: true, encoding: .utf8)
        return fleet
    }

    static func json(_ text: String) throws -> [[String: Any]] {
        try text.split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
    }

    @Test("created on one controller, approved on another, rolled out from a third once the threshold is met; the bytes' holder is named")
    func createApproveRollout() async throws {
        let fleet = try await Self.sharedFleet()
        defer { fleet.shutdown() }
        // staging now needs two of ci and alice; the agents reload the policy (SIGHUP).
        #expect(try await fleet.run(["keys", "generate", "alice", "--dir", "keys"]).status == 0)
        #expect(try await fleet.run(["keys", "generate", "mallory", "--dir", "keys"]).status == 0)
        try """
            keys:
              ci: keys/ci.pub
              alice: keys/alice.pub
            environments:
              staging: {threshold: 2, keys: [ci, alice], rollbackThreshold: 1}
              production: {threshold: 1, keys: [ci], rollbackThreshold: 1}
            """.write(toFile: fleet.dir.child("trust-policy.yaml"), atomically: true, encoding: .utf8)
        for daemon in fleet.daemons.values {
            let mark = daemon.logCount
            daemon.signal(SIGHUP)
            try await daemon.waitForLine(containing: "reload finished", "baton.reload.trust=ok", from: mark)
        }
        let (a, b, c) = (fleet.dir.child("state"), fleet.dir.child("state-b"), fleet.dir.child("state-c"))

        // Runner A's SQLite history (v1, deployed before the team switched) goes into the shared store, once.
        let migrated = try await fleet.run(["history", "migrate", "--to", "postgres", "--json"])
        #expect(migrated.status == 0, "\(migrated.stderr)")
        let copied = try #require(try Self.json(migrated.stdout).first?["copied"] as? [String: Int], "\(migrated.stdout)")
        // v1's release came with `deploy`'s own signature as its approval.
        #expect(copied["rollouts"] == 1 && copied["releases"] == 1 && copied["approvals"] == 1 && (copied["events"] ?? 0) > 0, "\(copied)")
        let again = try await fleet.run(["history", "migrate", "--to", "postgres"])
        #expect(again.status == 0 && again.stdout.contains("rollouts    0 copied, 1 already there"), "\(again.stdout)\(again.stderr)")
        let seen = try await fleet.run(["history", "web", "--state-dir", b])
        #expect(seen.stdout.contains(" v1 ") && seen.stdout.contains("succeeded"), "\(seen.stdout)")

        // Runner A creates v2: registered with its serial and where the bytes are.
        let artifact = try fleet.artifact("v2")
        let created = try await fleet.run(
            ["release", "create", "web", "--artifact", artifact, "--release", "v2", "--environment", "staging", "--state-dir", a])
        #expect(created.status == 0, "\(created.stderr)")
        #expect(created.stdout.contains("registered web@v2 for staging"), "\(created.stdout)")

        // Runner B sees it, unapproved; a key the policy does not count is refused.
        let listed = try Self.json(try await fleet.run(["release", "list", "web", "--json", "--state-dir", b]).stdout)
        let row = try #require(listed.first)
        #expect(listed.count == 2 && row["release"] as? String == "v2" && row["ready"] as? Bool == false)
        #expect((row["artifactLocation"] as? String)?.contains("\(a)/artifacts/sha256/") == true, "\(row)")
        let serial = try #require(row["serial"] as? Int)
        let mallory = try await fleet.run(["approve", "web@v2", "--key", "keys/mallory.key", "--state-dir", b])
        #expect(mallory.status == 2 && mallory.stderr.contains("untrusted_key"), "\(mallory.stderr)")
        let first = try await fleet.run(["approve", "web@v2", "--key", "keys/ci.key", "--state-dir", b])
        #expect(first.status == 0 && first.stdout.contains("1 of 2 (ci)") && first.stdout.contains("more needed from alice"), "\(first.stdout)\(first.stderr)")

        // Runner C: refused before any host is contacted, naming the missing approver.
        let early = try await fleet.run(["rollout", "web@v2", "--plain", "--state-dir", c])
        #expect(early.status == 2, "\(early.stdout)\(early.stderr)")
        #expect(early.stderr.hasPrefix("error: threshold_not_met: web@v2") && early.stderr.contains("from alice"), "\(early.stderr)")
        for host in fleet.hostIDs { #expect(fleet.current(host) == "v1") }
        // The plan of the registered release shows every host would refuse it as it stands.
        let planned = try await fleet.run(["plan", "web@v2", "--artifact", artifact, "--state-dir", c])
        #expect(planned.status == 1 && planned.stdout.contains("threshold_not_met") && planned.stdout.contains("nothing was changed"),
                "\(planned.stdout)\(planned.stderr)")

        // Alice approves from runner C's machine; the plain text view agrees.
        let second = try await fleet.run(["approve", "web@v2", "--key", "keys/alice.key", "--state-dir", c])
        #expect(second.status == 0 && second.stdout.contains("2 of 2 (ci, alice)"), "\(second.stdout)\(second.stderr)")
        let table = try await fleet.run(["release", "list", "--state-dir", a])
        #expect(table.stdout.contains("web@v2") && table.stdout.contains("2 of 2 (ci, alice)") && table.stdout.contains(" yes "), "\(table.stdout)")

        // Runner C has no copy of the bytes and the manifest no url: refused, naming runner A's copy.
        let elsewhere = try await fleet.run(["rollout", "web@v2", "--plain", "--state-dir", c])
        #expect(elsewhere.status == 2, "\(elsewhere.stdout)\(elsewhere.stderr)")
        #expect(elsewhere.stderr.hasPrefix("error: artifact_elsewhere: ") && elsewhere.stderr.contains("\(a)/artifacts/sha256/")
                && elsewhere.stderr.contains("--artifact"), "\(elsewhere.stderr)")
        for host in fleet.hostIDs { #expect(fleet.current(host) == "v1") }
        // The same for a signed envelope file of that release (`manifest sign` still works alongside).
        #expect(try await fleet.run(["manifest", "sign", "web-v2.manifest.json", "--key", "keys/ci.key"]).status == 0)
        #expect(try await fleet.run(["manifest", "sign", "web-v2.manifest.envelope.json", "--key", "keys/alice.key"]).status == 0)
        let fromFile = try await fleet.run(["rollout", "web-v2.manifest.envelope.json", "--plain", "--state-dir", c])
        #expect(fromFile.status == 2 && fromFile.stderr.contains("artifact_elsewhere"), "\(fromFile.stderr)")

        // Given the bytes, runner C rolls out the approved release; the agents accept two signatures.
        let rolled = try await fleet.run(["rollout", "web@v2", "--artifact", artifact, "--json", "--state-dir", c])
        #expect(rolled.status == 0, "\(rolled.stdout)\(rolled.stderr)")
        for host in fleet.hostIDs { #expect(fleet.current(host) == "v2", "\(host)") }
        // Runner A's view of the history has runner C's rollout.
        let shown = try await fleet.run(["history", "--state-dir", a])
        #expect(shown.stdout.contains("v2") && shown.stdout.contains("succeeded"), "\(shown.stdout)")

        // Serials: A and B create releases before any rollout; their agents and local state
        // would give both the same serial; the store's counter does not.
        let v3 = try fleet.artifact("v3"), v4 = try fleet.artifact("v4")
        #expect(try await fleet.run(["release", "create", "web", "--artifact", v3, "--release", "v3", "--environment", "staging", "--state-dir", a]).status == 0)
        #expect(try await fleet.run(["release", "create", "web", "--artifact", v4, "--release", "v4", "--environment", "staging", "--state-dir", b]).status == 0)
        let serials = try Self.json(try await fleet.run(["release", "list", "web", "--json", "--state-dir", c]).stdout)
            .map { "\($0["release"] as? String ?? "?")=\($0["serial"] as? Int ?? 0)" }
        // (v1 came with the migrated history.)
        #expect(serials == ["v4=\(serial + 2)", "v3=\(serial + 1)", "v2=\(serial)", "v1=\(serial - 1)"], "\(serials)")

        // An approval made on the manifest file elsewhere is taken into the store from its envelope.
        #expect(try await fleet.run(["manifest", "sign", "web-v3.manifest.json", "--key", "keys/alice.key"]).status == 0)
        let imported = try await fleet.run(["approve", "web@v3", "--envelope", "web-v3.manifest.envelope.json", "--state-dir", b])
        #expect(imported.status == 0 && imported.stdout.contains("1 of 2 (alice)"), "\(imported.stdout)\(imported.stderr)")
        let wrong = try await fleet.run(["approve", "web@v4", "--envelope", "web-v3.manifest.envelope.json", "--state-dir", b])
        #expect(wrong.status == 2 && wrong.stderr.contains("envelope_invalid") && wrong.stderr.contains("another manifest"), "\(wrong.stderr)")
    }
}

/// Leases between controllers on two "machines" (separate state directories, another
/// `USER`, so neither may treat the other's process as its own), one PostgreSQL store,
/// a short lease from `history.lease`, real agents.
@Suite("Team mode: leases between controllers", .serialized)
struct TeamLeaseTests {
    static let lease = 4.0
    /// The killed controller's lease runs at least two thirds of this past its last
    /// renewal: long enough for the other runner's first attempt on a busy machine.
    static let killedLease = 6.0
    static let otherRunner = ["USER": "runner-b"]

    static func lockEvents(_ fleet: LocalFleet) async throws -> [[String: Any]] {
        let result = try await fleet.run(["lock", "list", "--events", "--json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stdout)")
        return try #require(object["events"] as? [[String: Any]], "\(object)")
    }

    @Test("a controller killed (SIGKILL) mid-rollout: another runner is locked out until the lease runs out, then takes over and resumes")
    func killedThenTakenOver() async throws {
        let fleet = try await TeamReleaseTests.sharedFleet(extra: ", lease: \(Int(Self.killedLease))s")
        defer { fleet.release(); fleet.shutdown() }
        let v2 = try await RolloutTests.signedRelease(fleet, "v2")
        try fleet.hold()
        let first = try fleet.start(["rollout", v2, "--batch", "1", "--json"])
        try await first.waitForLine(containing: "\"host\":\"host-1\"", "\"phase\":\"activating\"")
        let id = try ResumeTests.rolloutID(first)
        kill(first.process.processIdentifier, SIGKILL)
        _ = await first.waitForExit()
        let killedAt = Date()
        fleet.release()

        // Another machine cannot tell whether that controller is alive: its lease is the answer.
        let early = try await fleet.run(["rollout", "resume", id, "--plain", "--state-dir", fleet.dir.child("state-b")], environment: Self.otherRunner)
        #expect(early.status == 4 && early.stderr.contains("lock_held"), "\(early.stdout)\(early.stderr)")
        #expect(Date().timeIntervalSince(killedAt) < Self.killedLease * 2 / 3, "the check may have run after the lease; the machine is too slow for this test")
        try await Task.sleep(for: .seconds(max(0, Self.killedLease - Date().timeIntervalSince(killedAt)) + 0.5))

        // As if on another machine: without the first runner's copy of the bytes the resume is
        // refused before any host is contacted, naming where they are.
        let artifacts = fleet.dir.child("state/artifacts")
        try FileManager.default.moveItem(atPath: artifacts, toPath: artifacts + ".elsewhere")
        let lacking = try await fleet.run(["rollout", "resume", id, "--plain", "--state-dir", fleet.dir.child("state-b")], environment: Self.otherRunner)
        #expect(lacking.status == 2 && lacking.stderr.hasPrefix("error: artifact_elsewhere: ") && lacking.stderr.contains(artifacts), "\(lacking.stderr)")
        try FileManager.default.moveItem(atPath: artifacts + ".elsewhere", toPath: artifacts)

        let resumed = try await fleet.run(["rollout", "resume", id, "--plain", "--state-dir", fleet.dir.child("state-b")], environment: Self.otherRunner)
        #expect(resumed.status == 0, "\(resumed.stdout)\(resumed.stderr)")
        #expect(resumed.stderr.contains("took over the lock"), "\(resumed.stderr)")
        for host in fleet.hostIDs {
            #expect(fleet.current(host) == "v2", "\(host)")
            #expect(try fleet.records(host).filter { $0["release"] as? String == "v2" }.count == 1, "\(host) deployed v2 more than once")
        }
        let events = try await Self.lockEvents(fleet)
        let takeover = try #require(events.first { $0["action"] as? String == "taken_over" }, "\(events)")
        #expect((takeover["actor"] as? String)?.hasPrefix("runner-b@") == true, "\(takeover)")
        #expect(events.last?["action"] as? String == "released")
        let history = try await fleet.run(["history", "web", "--json"])
        let rollouts = try #require(try JSONSerialization.jsonObject(with: Data(history.stdout.utf8)) as? [[String: Any]])
        #expect(rollouts.first?["id"] as? String == id && rollouts.first?["outcome"] as? String == "succeeded")
    }

    @Test("a controller paused (SIGSTOP) past its lease while another takes over does nothing more when it resumes: abandoned, exit 4")
    func pausedPastItsLease() async throws {
        let fleet = try await TeamReleaseTests.sharedFleet(extra: ", lease: \(Int(Self.lease))s")
        defer { fleet.release(); fleet.shutdown() }
        let v2 = try await RolloutTests.signedRelease(fleet, "v2")
        try fleet.hold()
        let paused = try fleet.start(["rollout", v2, "--batch", "1", "--json"])
        defer { if paused.process.isRunning { kill(paused.process.processIdentifier, SIGKILL) } }
        try await paused.waitForLine(containing: "\"host\":\"host-1\"", "\"phase\":\"activating\"")
        let id = try ResumeTests.rolloutID(paused)
        kill(paused.process.processIdentifier, SIGSTOP)
        let linesBefore = paused.output.count
        try await Task.sleep(for: .seconds(Self.lease + 1))

        // The other runner takes the rollout over and finishes it.
        fleet.release()
        let resumed = try await fleet.run(["rollout", "resume", id, "--json", "--state-dir", fleet.dir.child("state-b")], environment: Self.otherRunner)
        #expect(resumed.status == 0, "\(resumed.stdout)\(resumed.stderr)")
        for host in fleet.hostIDs { #expect(fleet.current(host) == "v2", "\(host)") }

        // The paused one wakes: its term is stale, so it stops before its next wave.
        kill(paused.process.processIdentifier, SIGCONT)
        #expect(await paused.waitForExit() == 4, "\(paused.output.suffix(3)) \(paused.stderr)")
        let after = paused.output.dropFirst(linesBefore).compactMap { line in
            try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        }
        #expect(after.last?["outcome"] as? String == "abandoned", "\(after)")
        // It deployed nothing after waking: no event of its names another host.
        let touched = Set(after.compactMap { $0["host"] as? String })
        #expect(touched.isSubset(of: ["host-1"]), "the paused controller acted on \(touched.sorted())")
        for host in fleet.hostIDs {
            #expect(try fleet.records(host).filter { $0["release"] as? String == "v2" }.count == 1, "\(host)")
        }
        // The record is the one who finished it.
        let history = try await fleet.run(["history", "web", "--json"])
        let rollouts = try #require(try JSONSerialization.jsonObject(with: Data(history.stdout.utf8)) as? [[String: Any]])
        #expect(rollouts.first?["id"] as? String == id && rollouts.first?["outcome"] as? String == "succeeded")
        #expect(try await Self.lockEvents(fleet).contains { $0["action"] as? String == "taken_over" })
    }
}
