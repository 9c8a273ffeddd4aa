import BatonAgent
import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

/// Returns to an earlier release: only what the full threshold approved ever runs, the
/// approved manifest never changes, and retention keeps the way back.
@Suite struct ReturnTests {
    /// Each hook appends its own mark to a file outside the releases, so a test can tell
    /// exactly which approved (or unapproved) commands ran.
    static func marking(_ mark: String, log: String) -> Hooks {
        Hooks(
            prepare: Hook(command: .shell("echo prepare:\(mark) >> '\(log)'")),
            activate: Hook(command: .shell("echo activate:\(mark) >> '\(log)'")))
    }

    static func marks(_ log: String) -> [String] {
        ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// The refusal of an envelope, or nil (and the deployment it started ends) if accepted.
    static func refusal(_ engine: DeploymentEngine, _ bytes: [UInt8]) async -> RequestError? {
        do {
            let accepted = try await engine.submit(envelope: bytes)
            _ = await engine.wait(for: accepted.id)
            return nil
        } catch {
            return error
        }
    }

    func approvedBytes(_ fixture: AgentFixture, _ release: String) -> Data? {
        FileManager.default.contents(atPath: fixture.layout.approved(fixture.app, release))
    }

    /// The reviewed probe: threshold 2, `keep: 1`. One signer names an approved release
    /// with a new prepare hook: refused, nothing runs, the approved manifest is unchanged.
    /// Once retention removed that release, even its exact approved manifest needs the
    /// full threshold again.
    @Test func oneSignerCannotRunANewCommandThroughAReturn() async throws {
        let fixture = try AgentFixture(environment: "production", threshold: 2)
        defer { fixture.remove() }
        let engine = try fixture.engine()
        let log = fixture.dir.child("hooks.log")
        let approvers = [fixture.alice, fixture.bob]
        let p1 = try fixture.artifact("p1"), p2 = try fixture.artifact("p2"), p3 = try fixture.artifact("p3")
        for (release, artifact) in [("p1", p1), ("p2", p2)] {
            let record = try await engine.deploy(
                try fixture.envelope(release, artifact: artifact, hooks: Self.marking(release, log: log), keep: 1, signers: approvers),
                artifact: artifact.path)
            #expect(record.phase == .succeeded, "\(record.events.map(\.message))")
        }
        // keep 1, yet p1 stays: it is the release live before p2, the way back.
        #expect(fixture.releasesOnDisk() == ["p1", "p2"])
        let approvedP1 = try #require(approvedBytes(fixture, "p1"))
        let marksBefore = Self.marks(log)

        let status = try #require(await engine.appStatus("web"))
        let heldP1 = try #require(status.held?.first { $0.release == "p1" })
        var evil = Manifest.returning(
            to: heldP1.approved, serial: fixture.serial + 1, issuedAt: Date().addingTimeInterval(-60),
            expiresAt: Date().addingTimeInterval(3600), notes: "rollback")
        evil.hooks?.prepare = Hook(command: .shell("echo prepare:EVIL >> '\(log)'"))
        let refusal = try #require(await Self.refusal(engine, try fixture.envelope(evil, signers: [fixture.key]).bytes))
        #expect(refusal.info.code == "return_mismatch")
        #expect(refusal.info.message.contains("hooks.prepare"))
        #expect(refusal.status == 403)
        #expect(Self.marks(log) == marksBefore)
        #expect(approvedBytes(fixture, "p1") == approvedP1)
        #expect(fixture.current() == "p2")

        // p3 moves the way back to p2; p1 goes, with its approved manifest.
        let record = try await engine.deploy(
            try fixture.envelope("p3", artifact: p3, hooks: Self.marking("p3", log: log), keep: 1, signers: approvers),
            artifact: p3.path)
        #expect(record.phase == .succeeded)
        #expect(fixture.releasesOnDisk() == ["p2", "p3"])
        #expect(approvedBytes(fixture, "p1") == nil)
        let exact = Manifest.returning(
            to: heldP1.approved, serial: fixture.serial + 1, issuedAt: Date().addingTimeInterval(-60),
            expiresAt: Date().addingTimeInterval(3600), notes: "rollback")
        for manifest in [exact, evil] {
            var manifest = manifest
            manifest.serial = fixture.serial + 1
            let refusal = await Self.refusal(engine, try fixture.envelope(manifest, signers: [fixture.key]).bytes)
            #expect(refusal?.info.code == "threshold_not_met", "a one-signer envelope for p1 after its approval was removed: \(String(describing: refusal))")
        }
        #expect(!Self.marks(log).contains { $0.contains("EVIL") })
        #expect(fixture.current() == "p3")
    }

    /// A one-signer return that equals the approved manifest runs that manifest's own
    /// hooks, keeps the approved manifest byte for byte, and is recorded as a return.
    @Test func anExactReturnRunsTheApprovedManifestAndLeavesItUntouched() async throws {
        let fixture = try AgentFixture(environment: "production", threshold: 2)
        defer { fixture.remove() }
        let engine = try fixture.engine()
        let log = fixture.dir.child("hooks.log")
        let approvers = [fixture.alice, fixture.bob]
        for release in ["a", "b"] {
            let artifact = try fixture.artifact(release)
            let record = try await engine.deploy(
                try fixture.envelope(release, artifact: artifact, hooks: Self.marking(release, log: log), signers: approvers),
                artifact: artifact.path)
            #expect(record.phase == .succeeded)
        }
        let approvedA = try #require(approvedBytes(fixture, "a"))
        let status = try #require(await engine.appStatus("web"))
        #expect(status.previous == "a")
        let held = try #require(status.held?.first { $0.release == "a" })
        #expect(Set(held.approvedBy.flatMap(\.names)) == ["alice", "bob"])
        let back = Manifest.returning(
            to: held.approved, serial: fixture.serial + 1, issuedAt: Date().addingTimeInterval(-60),
            expiresAt: Date().addingTimeInterval(3600), notes: "back to a: b misbehaves")
        let record = try await engine.deploy(try fixture.envelope(back, signers: [fixture.key]), artifact: nil)
        #expect(record.phase == .succeeded, "\(record.events.map(\.message))")
        #expect(record.isRollback)
        #expect(record.events.first?.message.contains("runs the manifest approved at serial 1 by") == true)
        #expect(fixture.current() == "a")
        #expect(Self.marks(log).last == "activate:a")
        #expect(approvedBytes(fixture, "a") == approvedA)
        // The evidence served for a is the payload alice and bob signed, not the return's.
        let evidence = try #require(await engine.approvedRelease(app: "web", release: "a"))
        #expect(evidence.serial == 1)
        #expect(evidence.requiredSignatures == 2)
        #expect(Base64.decode(evidence.payload).map { Digest.sha256Hex($0) } == evidence.payloadDigest)
    }

    /// a → b → c → back to a → d: the way back from d is a (the release live before it),
    /// not c (installed after a), and retention kept a although it was installed first.
    @Test func theWayBackIsTheReleaseLiveBefore() async throws {
        let fixture = try AgentFixture(environment: "production", threshold: 2)
        defer { fixture.remove() }
        let engine = try fixture.engine()
        let log = fixture.dir.child("hooks.log")
        let approvers = [fixture.alice, fixture.bob]
        func deploy(_ release: String, keep: Int) async throws {
            let artifact = try fixture.artifact(release)
            let record = try await engine.deploy(
                try fixture.envelope(release, artifact: artifact, hooks: Self.marking(release, log: log), keep: keep, signers: approvers),
                artifact: artifact.path)
            #expect(record.phase == .succeeded, "\(record.events.map(\.message))")
        }
        func returnToPrevious() async throws {
            let status = try #require(await engine.appStatus("web"))
            let previous = try #require(status.previous)
            let approved = try #require(status.approvedManifest(of: previous), "\(previous) is not held")
            let back = Manifest.returning(
                to: approved, serial: fixture.serial + 1, issuedAt: Date().addingTimeInterval(-60),
                expiresAt: Date().addingTimeInterval(3600), notes: "back")
            let record = try await engine.deploy(try fixture.envelope(back, signers: [fixture.key]), artifact: nil)
            #expect(record.phase == .succeeded, "\(record.events.map(\.message))")
        }
        for release in ["a", "b", "c"] { try await deploy(release, keep: 3) }
        // `baton rollback --to a` is a return to a held release by name.
        let status = try #require(await engine.appStatus("web"))
        let approvedA = try #require(status.approvedManifest(of: "a"))
        _ = try await engine.deploy(
            try fixture.envelope(
                Manifest.returning(to: approvedA, serial: fixture.serial + 1, issuedAt: Date().addingTimeInterval(-60),
                                   expiresAt: Date().addingTimeInterval(3600), notes: "to a"),
                signers: [fixture.key]), artifact: nil)
        #expect(fixture.current() == "a")
        // d keeps 2: by install order that would be c and d; by live history it is d and
        // the release live before it.
        try await deploy("d", keep: 2)
        let afterD = try #require(await engine.appStatus("web"))
        #expect(afterD.previous == "a")
        #expect(afterD.liveHistory?.map(\.release) == ["d", "a", "c", "b", "a"])
        #expect(fixture.releasesOnDisk() == ["a", "d"])
        try await returnToPrevious()
        #expect(fixture.current() == "a")
        #expect(Self.marks(log).last == "activate:a")
        // And from a, the way back is d.
        #expect(try #require(await engine.appStatus("web")).previous == "d")
    }

    /// A deployment that fails after the switch goes back to the release that was live,
    /// re-activated with that release's approved hooks (never "approved hooks apply"
    /// without running them).
    @Test func aRollbackReactivatesTheLiveReleaseFromItsApprovedManifest() async throws {
        let fixture = try AgentFixture()
        defer { fixture.remove() }
        let engine = try fixture.engine()
        let log = fixture.dir.child("hooks.log")
        let v1 = try fixture.artifact("v1"), v2 = try fixture.artifact("v2")
        _ = try await engine.deploy(try fixture.envelope("v1", artifact: v1, hooks: Self.marking("v1", log: log)), artifact: v1.path)
        let record = try await engine.deploy(
            try fixture.envelope("v2", artifact: v2, hooks: Hooks(activate: Hook(command: .shell("exit 3")))), artifact: v2.path)
        #expect(record.phase == .rolledBack)
        #expect(fixture.current() == "v1")
        #expect(Self.marks(log).last == "activate:v1")
        #expect(record.hooks.map(\.hook) == ["activate", "rollback-activate"])
        #expect(fixture.releasesOnDisk() == ["v1"])
        let status = try #require(await engine.appStatus("web"))
        #expect(status.held?.map(\.release) == ["v1"])
        #expect(status.liveHistory?.map(\.release) == ["v1"])
    }

    /// State written by an agent before 0.2: a `succeededReleases` list and, per release, the
    /// payload it last ran with. At start, a payload becomes an approval only when a
    /// record shows it was accepted under the full threshold and succeeded; one a return
    /// could have overwritten stays unapproved.
    @Test func approvalsFromAnOlderAgentAreCarriedOverOnlyWithProof() async throws {
        let fixture = try AgentFixture(environment: "production", threshold: 2)
        defer { fixture.remove() }
        let layout = fixture.layout
        do {
            let engine = try fixture.engine()
            for release in ["v1", "v2", "v3"] {
                let artifact = try fixture.artifact(release)
                _ = try await engine.deploy(
                    try fixture.envelope(release, artifact: artifact, signers: [fixture.alice, fixture.bob]), artifact: artifact.path)
            }
        }
        // Rewrite the data directory as the older agent left it.
        let statePath = layout.appState("web")
        var state = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: statePath))) as? [String: Any])
        state["liveHistory"] = nil
        state["succeededReleases"] = ["v1", "v2", "v3"]
        state["releases"] = (state["releases"] as? [[String: Any]])?.map { $0.filter { $0.key != "succeededAt" } }
        try JSONSerialization.data(withJSONObject: state).write(to: URL(fileURLWithPath: statePath))
        try FileManager.default.createDirectory(atPath: layout.manifestsDirectory("web"), withIntermediateDirectories: true)
        for release in ["v1", "v2", "v3"] {
            let approval = try BatonJSON.decode(ApprovedRelease.self, from: try #require(FileManager.default.contents(atPath: layout.approved("web", release))))
            var payload = try #require(Base64.decode(approval.payload))
            // v1's stored payload is not what was approved (as a one-signer return could have left it).
            if release == "v1" { payload.append(0x20) }
            try Data(payload).write(to: URL(fileURLWithPath: layout.manifest("web", release)))
            try FileManager.default.removeItem(atPath: layout.approved("web", release))
        }

        let engine = try fixture.engine()
        await engine.reconcile()
        let status = try #require(await engine.appStatus("web"))
        #expect(status.current == "v3")
        #expect(status.previous == "v2")
        #expect(Set(status.held?.map(\.release) ?? []) == ["v2", "v3"])
        #expect(status.liveHistory?.map(\.release) == ["v3", "v2", "v1"])
        #expect(await engine.approvedRelease(app: "web", release: "v2")?.serial == 2)
    }
}
