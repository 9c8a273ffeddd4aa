import BatonProtocol
import Foundation
import Testing

/// Change freezes: which instants a window covers, how the policy file declares them,
/// and what the verifier does with a manifest during one.
@Suite struct FreezeTests {
    func at(_ text: String) -> Date { RFC3339.parse(text)! }

    func parse(_ yaml: String) throws(ConfigurationError) -> TrustPolicy {
        let keys = [
            "alice.pub": Fixtures.alice.verifyingKey.pem, "bob.pub": Fixtures.bob.verifyingKey.pem,
            "carol.pub": Fixtures.carol.verifyingKey.pem, "mallory.pub": Fixtures.mallory.verifyingKey.pem,
        ]
        return try TrustPolicy.parse(yaml: yaml, file: "trust.yaml") { path in
            guard let pem = keys[path] else { throw UnreadableKeyFile(path: path) }
            return pem
        }
    }

    /// A policy whose production environment (threshold 2 of alice, bob, carol) has `freezes`.
    func production(freezes: String, extra: String = "") throws(ConfigurationError) -> TrustPolicy {
        try parse("""
            keys: {alice: alice.pub, bob: bob.pub, carol: carol.pub, mallory: mallory.pub}
            environments:
              production:
                threshold: 2
                keys: [alice, bob, carol]
                freezes:
            \(freezes)
            \(extra)
            """)
    }

    // MARK: windows

    @Test func aOneOffWindowStartsInclusiveAndEndsExclusive() throws {
        let policy = try production(freezes: """
                - {from: "2026-12-23T00:00:00Z", until: "2027-01-02T00:00:00+01:00", reason: holidays}
            """)
        let window = try #require(policy.environments["production"]?.freezes.first)
        #expect(window.reason == "holidays")
        #expect(window.end(ifActiveAt: at("2026-12-22T23:59:59Z")) == nil)
        #expect(window.end(ifActiveAt: at("2026-12-23T00:00:00Z")) == at("2027-01-01T23:00:00Z"))
        #expect(window.end(ifActiveAt: at("2027-01-01T22:59:59Z")) != nil)
        #expect(window.end(ifActiveAt: at("2027-01-01T23:00:00Z")) == nil)
    }

    @Test func aWeeklyWindowAcrossMidnightEndsTheNextDay() throws {
        // Friday 22:00 to 06:00: 2026-12-04 is a Friday.
        let policy = try production(freezes: """
                - weekly: {days: [fri], from: "22:00", until: "06:00"}
                  reason: night shift
            """)
        let window = try #require(policy.environments["production"]?.freezes.first)
        #expect(window.end(ifActiveAt: at("2026-12-04T21:59:59Z")) == nil)
        #expect(window.end(ifActiveAt: at("2026-12-04T22:00:00Z")) == at("2026-12-05T06:00:00Z"))
        #expect(window.end(ifActiveAt: at("2026-12-05T05:59:59Z")) == at("2026-12-05T06:00:00Z"))
        #expect(window.end(ifActiveAt: at("2026-12-05T06:00:00Z")) == nil)
        // Saturday night is not a start day; Thursday night neither.
        #expect(window.end(ifActiveAt: at("2026-12-05T23:00:00Z")) == nil)
        #expect(window.end(ifActiveAt: at("2026-12-03T23:00:00Z")) == nil)
        // A week later, again.
        #expect(window.end(ifActiveAt: at("2026-12-12T01:00:00Z")) == at("2026-12-12T06:00:00Z"))
        #expect(window.summary == "weekly fri 22:00-06:00 UTC")
    }

    @Test func aWeeklyWindowIsReadAtItsUTCOffset() throws {
        // Friday 16:00 to the end of the day at +01:00 is 15:00Z to 23:00Z.
        let policy = try production(freezes: """
                - weekly: {days: [fri], from: "16:00", until: "24:00"}
                  zone: "+01:00"
                  reason: weekend
                - weekly: {days: [mon], from: "00:00", until: "01:00"}
                  zone: "-05:30"
                  reason: west
            """)
        let windows = try #require(policy.environments["production"]?.freezes)
        #expect(windows[0].end(ifActiveAt: at("2026-12-04T14:59:59Z")) == nil)
        #expect(windows[0].end(ifActiveAt: at("2026-12-04T15:00:00Z")) == at("2026-12-04T23:00:00Z"))
        #expect(windows[0].end(ifActiveAt: at("2026-12-04T23:00:00Z")) == nil)
        // Monday 00:00 at -05:30 is Monday 05:30Z (2026-12-07 is a Monday).
        #expect(windows[1].end(ifActiveAt: at("2026-12-07T05:29:59Z")) == nil)
        #expect(windows[1].end(ifActiveAt: at("2026-12-07T05:30:00Z")) == at("2026-12-07T06:30:00Z"))
        #expect(windows[1].summary == "weekly mon 00:00-01:00 -05:30")
    }

    @Test func aWeeklyWindowInANamedZoneFollowsItsDaylightSavingTime() throws {
        // 09:00 to 10:00 in Berlin on Thursdays and Fridays: 08:00Z in winter (CET, +1),
        // 07:00Z in summer (CEST, +2). 2027-01-15 is a Friday, 2027-07-15 a Thursday.
        let policy = try production(freezes: """
                - weekly: {days: [thu, fri], from: "09:00", until: "10:00"}
                  zone: Europe/Berlin
                  reason: standup
            """)
        let window = try #require(policy.environments["production"]?.freezes.first)
        #expect(window.summary == "weekly thu,fri 09:00-10:00 Europe/Berlin")
        // 09:30 local in winter is 08:30Z; the window ends at 10:00 local, 09:00Z.
        #expect(window.end(ifActiveAt: at("2027-01-15T08:30:00Z")) == at("2027-01-15T09:00:00Z"))
        #expect(window.end(ifActiveAt: at("2027-01-15T07:30:00Z")) == nil)  // 08:30 local
        #expect(window.end(ifActiveAt: at("2027-01-15T09:00:00Z")) == nil)  // 10:00 local
        // 09:30 local in summer is 07:30Z; it ends at 08:00Z.
        #expect(window.end(ifActiveAt: at("2027-07-15T07:30:00Z")) == at("2027-07-15T08:00:00Z"))
        #expect(window.end(ifActiveAt: at("2027-07-15T08:30:00Z")) == nil)  // 10:30 local
        #expect(window.end(ifActiveAt: at("2027-07-15T06:59:59Z")) == nil)  // 08:59:59 local
        // The controller and the agent ask the same way.
        #expect(policy.activeFreeze(of: "production", at: at("2027-07-15T07:30:00Z"))?.until == at("2027-07-15T08:00:00Z"))
        #expect(policy.activeFreeze(of: "production", at: at("2027-01-15T07:30:00Z")) == nil)
    }

    @Test func anOccurrenceAcrossADaylightSavingChangeEndsAtTheOffsetThen() throws {
        // Sunday 2027-03-28 in Berlin: clocks go from 02:00 CET to 03:00 CEST (01:00Z).
        let policy = try production(freezes: """
                - weekly: {days: [sun], from: "00:00", until: "24:00"}
                  zone: Europe/Berlin
                  reason: sunday
            """)
        let window = try #require(policy.environments["production"]?.freezes.first)
        // At 01:30 CET the day's end is Monday 00:00 CEST: 22:00Z, not 23:00Z.
        #expect(window.end(ifActiveAt: at("2027-03-28T00:30:00Z")) == at("2027-03-28T22:00:00Z"))
        #expect(window.end(ifActiveAt: at("2027-03-27T23:00:00Z")) == at("2027-03-28T22:00:00Z"))
        #expect(window.end(ifActiveAt: at("2027-03-27T22:59:59Z")) == nil)  // Saturday 23:59:59 CET
        #expect(window.end(ifActiveAt: at("2027-03-28T22:00:00Z")) == nil)  // Monday 00:00 CEST
    }

    @Test func anUnknownZoneFailsThePolicyWithItsOwnCode() {
        let error = #expect(throws: ConfigurationError.self) {
            try production(freezes: """
                    - weekly: {days: [fri], from: "16:00", until: "18:00"}
                      zone: Mars/Olympus_Mons
                      reason: x
                """)
        }
        #expect(error?.code == .unknownTimeZone)
        #expect(error?.code.rawValue == "unknown_time_zone")
        #expect(error?.message.contains("/usr/share/zoneinfo/Mars/Olympus_Mons cannot be read") == true, "\(String(describing: error))")
        let traversal = #expect(throws: ConfigurationError.self) {
            try production(freezes: """
                    - weekly: {days: [fri], from: "16:00", until: "18:00"}
                      zone: Europe/../../../etc/passwd
                      reason: x
                """)
        }
        #expect(traversal?.code == .invalidValue)
    }

    @Test func windowsThatFollowOneAnotherAreOneFreeze() throws {
        let policy = try production(freezes: """
                - weekly: {days: [fri], from: "18:00", until: "24:00"}
                  reason: weekend
                - weekly: {days: [sat, sun], from: "00:00", until: "24:00"}
                  reason: weekend
                - {from: "2026-12-07T00:00:00Z", until: "2026-12-07T12:00:00Z", reason: "monday migration"}
            """)
        let freeze = try #require(policy.activeFreeze(of: "production", at: at("2026-12-04T19:00:00Z")))
        #expect(freeze.until == at("2026-12-07T12:00:00Z"))
        #expect(freeze.windows.count == 3)
        #expect(freeze.summary.hasPrefix("environment production is frozen until 2026-12-07T12:00:00Z (weekend"))
        #expect(freeze.summary.contains("monday migration"))
        #expect(policy.activeFreeze(of: "production", at: at("2026-12-04T17:59:59Z")) == nil)
        #expect(policy.activeFreeze(of: "staging", at: at("2026-12-04T19:00:00Z")) == nil)
    }

    // MARK: parsing

    @Test(arguments: [
        // line numbers: the freezes list starts on line 7
        ("    - {from: \"2026-12-23T00:00:00Z\", until: \"2026-12-22T00:00:00Z\", reason: x}", 7, "until must be after"),
        ("    - {from: \"2026-12-23\", until: \"2026-12-24T00:00:00Z\", reason: x}", 7, "RFC 3339"),
        ("    - {from: \"2026-12-23T00:00:00Z\", until: \"2026-12-24T00:00:00Z\"}", 7, "missing 'reason'"),
        ("    - {from: \"2026-12-23T00:00:00Z\", until: \"2026-12-24T00:00:00Z\", reason: \" \"}", 7, "say why"),
        ("    - {from: \"2026-12-23T00:00:00Z\", until: \"2026-12-24T00:00:00Z\", zone: \"+01:00\", reason: x}", 7, "unknown field 'zone'"),
        ("    - weekly: {days: [friday], from: \"16:00\", until: \"18:00\"}\n      reason: x", 7, "not a day"),
        ("    - weekly: {days: [fri, fri], from: \"16:00\", until: \"18:00\"}\n      reason: x", 7, "listed twice"),
        ("    - weekly: {days: [], from: \"16:00\", until: \"18:00\"}\n      reason: x", 7, "at least one day"),
        ("    - weekly: {days: [fri], from: \"24:00\", until: \"18:00\"}\n      reason: x", 7, "not a time of day"),
        ("    - weekly: {days: [fri], from: \"16:00\", until: \"18:60\"}\n      reason: x", 7, "not a time of day"),
        ("    - weekly: {days: [fri], from: \"16:00\", until: \"16:00\"}\n      reason: x", 7, "is empty"),
        ("    - weekly: {days: [fri], from: \"16:00\", until: \"18:00\"}\n      zone: Europe/Atlantis\n      reason: x", 8, "unknown time zone 'Europe/Atlantis'"),
        ("    - weekly: {days: [fri], from: \"16:00\", until: \"18:00\"}\n      zone: ../../etc/passwd\n      reason: x", 8, "a time zone name like Europe/Berlin"),
        ("    - weekly: {days: [fri], from: \"16:00\", until: \"18:00\"}\n      zone: /etc/localtime\n      reason: x", 8, "a time zone name like Europe/Berlin"),
        ("    - weekly: {days: [fri], from: \"16:00\", until: \"18:00\"}\n      zone: \"+1:00\"\n      reason: x", 8, "UTC offset"),
        ("    - weekly: {days: [fri], from: \"16:00\", until: \"18:00\", at: 1}\n      reason: x", 7, "unknown field 'at'"),
    ])
    func freezeErrorsNameTheFileTheLineAndTheProblem(freeze: String, line: Int, message: String) throws {
        do {
            let policy = try production(freezes: freeze)
            Issue.record("parsed: \(policy)")
        } catch {
            #expect(error.file == "trust.yaml")
            #expect(error.line == line, "\(error)")
            #expect(error.message.contains(message), "\(error)")
        }
    }

    @Test func breakGlassKeysAreNamedKeysOfThePolicy() throws {
        let freeze = "    - {from: \"2026-12-23T00:00:00Z\", until: \"2027-01-02T00:00:00Z\", reason: holidays}"
        let policy = try production(freezes: freeze, extra: "    breakGlass: {keys: [carol, mallory]}")
        #expect(policy.environments["production"]?.breakGlassKeys == ["carol", "mallory"])
        #expect(throws: ConfigurationError.self) { try production(freezes: freeze, extra: "    breakGlass: {keys: [dave]}") }
        #expect(throws: ConfigurationError.self) { try production(freezes: freeze, extra: "    breakGlass: {keys: []}") }
        #expect(throws: ConfigurationError.self) { try production(freezes: freeze, extra: "    breakGlass: {threshold: 3}") }
    }

    @Test func aFreezeNoOneCanBreakIsRefused() throws {
        // threshold 3 of three keys: threshold + 1 is out of reach without breakGlass keys.
        let yaml = """
            keys: {alice: alice.pub, bob: bob.pub, carol: carol.pub}
            environments:
              production:
                threshold: 3
                keys: [alice, bob, carol]
                freezes:
                  - {from: "2026-12-23T00:00:00Z", until: "2027-01-02T00:00:00Z", reason: holidays}
            """
        do {
            _ = try parse(yaml)
            Issue.record("parsed")
        } catch {
            #expect(error.line == 7, "\(error)")
            #expect(error.message.contains("breakGlass"))
        }
        #expect(try parse(yaml + "\n    breakGlass: {keys: [alice]}").environments["production"]?.breakGlassKeys == ["alice"])
    }

    // MARK: verifier

    static let holidays = FreezeWindow(
        schedule: .once(from: RFC3339.parse("2026-11-20T00:00:00Z")!, until: RFC3339.parse("2026-11-23T00:00:00Z")!),
        reason: "holiday sale")

    var frozen: TrustPolicy {
        var policy = Fixtures.policy
        policy.keys["mallory"] = Fixtures.mallory.verifyingKey
        policy.environments["production"]?.freezes = [Self.holidays]
        return policy
    }

    let host = HostIdentity(hostID: "web-1", environment: "production")

    /// Valid for a week, so it outlasts the freeze.
    let weekLong = Fixtures.manifest(environment: "production", expiresAt: Fixtures.now.addingTimeInterval(7 * 86_400))

    @Test func aChangeDuringAFreezeIsRefusedWithItsReasonAndEnd() throws {
        let envelope = Fixtures.envelope(weekLong, signedBy: [Fixtures.alice, Fixtures.bob])
        let refused = Fixtures.verify(envelope, host: host, policy: frozen)
        #expect(refused.code == .changeFrozen)
        #expect(refused.message?.contains("frozen until 2026-11-23T00:00:00Z") == true)
        #expect(refused.message?.contains("holiday sale") == true)
        #expect(refused.message?.contains("3 distinct approvals") == true)
        #expect(VerificationCode.changeFrozen.httpStatus == 403)
        // The same manifest after the freeze lifts passes, without breaking glass.
        let after = try Fixtures.verify(envelope, host: host, policy: frozen, now: at("2026-11-23T00:00:00Z")).get()
        #expect(!after.breakGlass)
        // Other environments are not frozen.
        let staging = Fixtures.envelope(Fixtures.manifest(), signedBy: [Fixtures.alice])
        #expect(Fixtures.verify(staging, policy: frozen).code == nil)
        // Every other refusal keeps its own code: the freeze is the last check.
        #expect(Fixtures.verify(
            Fixtures.envelope(Fixtures.manifest(environment: "production"), signedBy: [Fixtures.alice]), host: host,
            policy: frozen).code == .thresholdNotMet)
        #expect(Fixtures.verify(envelope, host: host, history: AppHistory(lastSerial: 10, lastPayloadDigest: envelope.payloadDigest),
                                policy: frozen).code == .duplicate)
    }

    @Test func thresholdPlusOneBreaksGlass() throws {
        let envelope = Fixtures.envelope(weekLong, signedBy: [Fixtures.alice, Fixtures.bob, Fixtures.carol])
        let verified = try Fixtures.verify(envelope, host: host, policy: frozen).get()
        #expect(verified.breakGlass)
        #expect(verified.signers.count == 3)
        // An untrusted third signature does not count towards breaking glass.
        let withMallory = Fixtures.envelope(
            Fixtures.manifest(environment: "production"), signedBy: [Fixtures.alice, Fixtures.bob, Fixtures.mallory])
        #expect(Fixtures.verify(withMallory, host: host, policy: frozen).code == .changeFrozen)
        // Outside a freeze the same three signatures are an ordinary deployment.
        #expect(try Fixtures.verify(envelope, host: host, policy: frozen, now: at("2026-11-24T00:00:00Z")).get().breakGlass == false)
    }

    @Test func aNamedBreakGlassKeySetMustSignInFull() throws {
        var policy = frozen
        policy.environments["production"]?.breakGlassKeys = ["mallory"]  // e.g. the CTO's key, not a day-to-day approver
        let manifest = Fixtures.manifest(environment: "production")
        let threeApprovers = Fixtures.envelope(manifest, signedBy: [Fixtures.alice, Fixtures.bob, Fixtures.carol])
        let refused = Fixtures.verify(threeApprovers, host: host, policy: policy)
        #expect(refused.code == .changeFrozen)
        #expect(refused.message?.contains("the signatures of mallory") == true)
        let withCTO = Fixtures.envelope(manifest, signedBy: [Fixtures.alice, Fixtures.bob, Fixtures.mallory])
        let verified = try Fixtures.verify(withCTO, host: host, policy: policy).get()
        #expect(verified.breakGlass)
        // The break-glass key does not stand in for the threshold: mallory does not count for production.
        let ctoAlone = Fixtures.envelope(manifest, signedBy: [Fixtures.alice, Fixtures.mallory])
        #expect(Fixtures.verify(ctoAlone, host: host, policy: policy).code == .thresholdNotMet)
    }

    @Test func aReturnDuringAFreezeIsAllowed() throws {
        let approved = Fixtures.manifest(release: "v1", serial: 5, environment: "production")
        let back = Manifest.returning(
            to: approved, serial: 11, issuedAt: Fixtures.now.addingTimeInterval(-10),
            expiresAt: Fixtures.now.addingTimeInterval(3600), notes: "revert")
        let history = AppHistory(lastSerial: 10, approvedReleases: ["v1": approved])
        let verified = try Fixtures.verify(
            Fixtures.envelope(back, signedBy: [Fixtures.alice]), host: host, history: history, policy: frozen).get()
        #expect(verified.isRollback)
        #expect(!verified.breakGlass)
        // The same release with something changed is no return: frozen like any change.
        var changed = back
        changed.bake = .seconds(1)
        #expect(Fixtures.verify(
            Fixtures.envelope(changed, signedBy: [Fixtures.alice, Fixtures.bob]), host: host, history: history,
            policy: frozen).code == .changeFrozen)
    }

    @Test func freezeStatusTellsAPlannerWhetherAnEnvelopeBreaksGlass() throws {
        let manifest = Fixtures.manifest(environment: "production")
        let two = Fixtures.envelope(manifest, signedBy: [Fixtures.alice, Fixtures.bob])
        let three = Fixtures.envelope(manifest, signedBy: [Fixtures.alice, Fixtures.bob, Fixtures.carol])
        let status = try #require(ManifestVerifier.freezeStatus(envelope: two, manifest: manifest, policy: frozen, now: Fixtures.now))
        #expect(status.freeze.until == at("2026-11-23T00:00:00Z"))
        #expect(!status.breaksGlass)
        #expect(ManifestVerifier.freezeStatus(envelope: three, manifest: manifest, policy: frozen, now: Fixtures.now)?.breaksGlass == true)
        #expect(ManifestVerifier.freezeStatus(envelope: two, manifest: manifest, policy: frozen, now: at("2026-11-24T00:00:00Z")) == nil)
    }
}
