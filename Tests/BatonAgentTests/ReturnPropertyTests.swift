import BatonAgent
import BatonProtocol
import BatonTestSupport
import Foundation
import PropertyBased
import Testing

/// Random sequences of deployments, failed deployments, exact returns and tampered
/// returns against a real engine in a temporary directory (threshold 2, returns signed by
/// one key). After every step: `current` and the release live before it are on disk with
/// their approved manifests, approved manifests never change, and no command ran that
/// the full threshold did not approve.
@Suite struct ReturnPropertyTests {
    enum Step: Int, CaseIterable {
        case deploy, deployThatFails, returnExactly, returnWithNewCommand, returnToARemovedRelease
    }

    @Test func returnsAndRetentionKeepTheirPromises() async {
        await propertyCheck(
            count: 12, input: Gen.int(in: 0...(Step.allCases.count - 1)).array(of: 3...9), Gen.int(in: 1...3),
            Gen.int(in: 0...1000).array(of: 9)
        ) { steps, keep, choices in
            try await run(steps.map { Step(rawValue: $0)! }, keep: keep, choices: choices)
        }
    }

    func run(_ steps: [Step], keep: Int, choices: [Int]) async throws {
        let fixture = try AgentFixture(environment: "production", threshold: 2)
        defer { fixture.remove() }
        let engine = try fixture.engine()
        let log = fixture.dir.child("hooks.log")
        var approved: [String: Data] = [:]  // release -> approved manifest file as first written
        var removed: [String: Manifest] = [:]  // approved manifests of releases retention removed
        var count = 0
        let context = "steps \(steps), keep \(keep)"

        for (index, step) in steps.enumerated() {
            let choice = choices[index % choices.count]
            let status = await engine.appStatus("web")
            let held = status?.held ?? []
            switch step {
            case .deploy, .deployThatFails:
                count += 1
                let release = "r\(count)"
                let artifact = try fixture.artifact(release)
                var hooks = ReturnTests.marking(release, log: log)
                if step == .deployThatFails { hooks.activate = Hook(command: .shell("echo activate:\(release) >> '\(log)'; exit 1")) }
                let record = try await engine.deploy(
                    try fixture.envelope(release, artifact: artifact, hooks: hooks, keep: keep, signers: [fixture.alice, fixture.bob]),
                    artifact: artifact.path)
                #expect(record.phase == (step == .deploy ? .succeeded : .rolledBack), "\(context): \(record.events.map(\.message))")
                if step == .deploy, let bytes = FileManager.default.contents(atPath: fixture.layout.approved("web", release)) {
                    approved[release] = bytes
                }
            case .returnExactly, .returnWithNewCommand:
                let candidates = held.filter { $0.release != status?.current }
                guard !candidates.isEmpty else { continue }
                let target = candidates[choice % candidates.count]
                var manifest = Manifest.returning(
                    to: target.approved, serial: fixture.serial + 1, issuedAt: Date().addingTimeInterval(-60),
                    expiresAt: Date().addingTimeInterval(3600), notes: "return \(index)")
                if step == .returnWithNewCommand {
                    if choice % 2 == 0 {
                        manifest.hooks?.activate = Hook(command: .shell("echo activate:EVIL >> '\(log)'"))
                    } else {
                        manifest.health = HealthPolicy(checks: [.command(.shell("echo check:EVIL >> '\(log)'"))])
                    }
                }
                let bytes = try fixture.envelope(manifest, signers: [fixture.key]).bytes
                let refusal = await ReturnTests.refusal(engine, bytes)
                if step == .returnExactly {
                    #expect(refusal == nil, "\(context): an exact return to \(target.release) was refused: \(String(describing: refusal))")
                    #expect(fixture.current() == target.release, "\(context)")
                } else {
                    #expect(refusal?.info.code == "return_mismatch", "\(context): \(String(describing: refusal))")
                }
            case .returnToARemovedRelease:
                guard let (release, manifest) = removed.sorted(by: { $0.key < $1.key }).first else { continue }
                let back = Manifest.returning(
                    to: manifest, serial: fixture.serial + 1, issuedAt: Date().addingTimeInterval(-60),
                    expiresAt: Date().addingTimeInterval(3600), notes: "return to a removed release")
                let refusal = await ReturnTests.refusal(engine, try fixture.envelope(back, signers: [fixture.key]).bytes)
                #expect(refusal?.info.code == "threshold_not_met", "\(context): return to removed \(release): \(String(describing: refusal))")
            }

            // The invariants.
            let after = await engine.appStatus("web")
            let heldNow = Dictionary((after?.held ?? []).map { ($0.release, $0) }, uniquingKeysWith: { a, _ in a })
            let onDisk = Set(fixture.releasesOnDisk())
            #expect(Set(after?.releases ?? []) == onDisk, "\(context): the state's releases are not the directories")
            if let current = after?.current {
                #expect(heldNow[current] != nil, "\(context): current \(current) is not held with its approved manifest")
            }
            if let previous = after?.previous {
                #expect(heldNow[previous] != nil && onDisk.contains(previous), "\(context): previous \(previous) is gone")
            }
            for (release, bytes) in approved {
                let now = FileManager.default.contents(atPath: fixture.layout.approved("web", release))
                if let now {
                    #expect(now == bytes, "\(context): the approved manifest of \(release) changed")
                    #expect(onDisk.contains(release), "\(context): an approved manifest outlived \(release)")
                } else if let manifest = heldNow[release]?.approved ?? status?.approvedManifest(of: release) {
                    removed[release] = manifest
                    #expect(!onDisk.contains(release), "\(context): \(release) on disk without its approved manifest")
                }
            }
            #expect(!ReturnTests.marks(log).contains { $0.contains("EVIL") }, "\(context): an unapproved command ran")
        }
    }
}
