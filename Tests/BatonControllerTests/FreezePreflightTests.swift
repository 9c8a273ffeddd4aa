import BatonController
import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

/// The controller's side of a change freeze: the preflight refuses with the agents' code
/// before anything is contacted, `plan` explains, and the history keeps the break-glass mark.
@Suite("change freezes on the controller")
struct FreezePreflightTests {
    static let ci = try! SigningKey(seed: Array(repeating: 4, count: 32))
    static let approver = try! SigningKey(seed: Array(repeating: 5, count: 32))
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    static let policy = TrustPolicy(
        keys: ["ci": ci.verifyingKey, "approver": approver.verifyingKey],
        environments: [
            "staging": .init(
                threshold: 1, keys: ["ci", "approver"],
                freezes: [FreezeWindow(
                    schedule: .once(from: now.addingTimeInterval(-60), until: now.addingTimeInterval(3600)), reason: "sale week")]),
        ])

    static func envelope(signedBy keys: [SigningKey]) -> (bytes: [UInt8], manifest: Manifest) {
        let manifest = Manifest(
            app: "web", release: "v2", serial: 10, environment: "staging", issuedAt: now.addingTimeInterval(-10),
            expiresAt: now.addingTimeInterval(86_400),
            artifact: ArtifactReference(
                sha256: String(repeating: "b", count: 64), size: 100, format: .tarGz, url: "https://artifacts.example/web-v2.tar.gz"))
        var envelope = Envelope(payloadType: Manifest.payloadType, payload: Array(try! BatonJSON.encode(manifest)))
        for key in keys { envelope.sign(with: key) }
        return (Array(envelope.serialized()), manifest)
    }

    func check(_ bytes: [UInt8], state: ControllerState) throws(ControllerError) -> RolloutPreflight.Checked {
        try RolloutPreflight.check(
            .init(envelope: bytes, envelopeFile: "v2.envelope.json",
                  fleet: Fleet(hosts: [Fleet.Host(id: "host-1", address: "127.0.0.1:1", environment: "staging")]),
                  policy: Self.policy, now: Self.now),
            state: state)
    }

    @Test("a frozen envelope is refused with change_frozen; threshold + 1 passes as break-glass")
    func preflight() throws {
        let dir = try TemporaryDirectory(prefix: "baton-freeze")
        defer { dir.remove() }
        let state = ControllerState(root: dir.child("state"))
        do {
            _ = try check(Self.envelope(signedBy: [Self.ci]).bytes, state: state)
            Issue.record("a frozen envelope passed the preflight")
        } catch {
            #expect(error.code == .changeFrozen)
            #expect(error.reportedCode == "change_frozen")
            #expect(error.message.contains("sale week"), "\(error)")
            #expect(error.message.contains("frozen until \(RFC3339.format(Self.now.addingTimeInterval(3600)))"), "\(error)")
        }
        let checked = try check(Self.envelope(signedBy: [Self.ci, Self.approver]).bytes, state: state)
        #expect(checked.breakGlass)
        #expect(checked.signers.count == 2)
    }

    @Test("plan's header names the freeze and whether the envelope breaks glass")
    func planNotice() {
        let one = Self.envelope(signedBy: [Self.ci])
        let notice = RolloutPlanner.freezeNotice(envelope: one.bytes, manifest: one.manifest, policy: Self.policy, now: Self.now)
        #expect(notice.first?.hasPrefix("environment staging is frozen until \(RFC3339.format(Self.now.addingTimeInterval(3600))) (sale week") == true,
                "\(notice)")
        #expect(notice.last?.hasPrefix("break glass: no, that takes 2 distinct approvals") == true, "\(notice)")
        let two = Self.envelope(signedBy: [Self.ci, Self.approver])
        #expect(RolloutPlanner.freezeNotice(envelope: two.bytes, manifest: two.manifest, policy: Self.policy, now: Self.now)
            .last?.hasPrefix("break glass: yes") == true)
        #expect(RolloutPlanner.freezeNotice(
            envelope: one.bytes, manifest: one.manifest, policy: Self.policy, now: Self.now.addingTimeInterval(3600)).isEmpty)
        #expect(RolloutPlanner.freezeNotice(envelope: one.bytes, manifest: one.manifest, policy: nil, now: Self.now).isEmpty)
    }
}
