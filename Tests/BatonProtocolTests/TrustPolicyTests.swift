import BatonProtocol
import Testing

/// The trust policy parser: the happy path and each error, with the line it names.
@Suite struct TrustPolicyTests {
    let keys: [String: String] = [
        "alice.pub": Fixtures.alice.verifyingKey.pem,
        "bob.pub": Fixtures.bob.verifyingKey.pem,
        "ci.pub": Fixtures.carol.verifyingKey.pem,
        "alice.key": Fixtures.alice.pem,
    ]

    func parse(_ yaml: String) throws(ConfigurationError) -> TrustPolicy {
        try TrustPolicy.parse(yaml: yaml, file: "trust.yaml") { path in
            guard let pem = keys[path] else { throw TestError.missing(path) }
            return pem
        }
    }

    enum TestError: Error { case missing(String) }

    func parseError(_ yaml: String) -> ConfigurationError? {
        do {
            _ = try parse(yaml)
            return nil
        } catch {
            return error
        }
    }

    @Test func parsesTheDocumentedExample() throws {
        let policy = try parse("""
            keys:
              alice: alice.pub        # PEM public key, path relative to this file
              ci: ci.pub
              bob: bob.pub
            environments:
              staging:    {threshold: 1, keys: [ci, alice]}
              production: {threshold: 2, keys: [alice, bob, ci], rollbackThreshold: 1}
            """)
        #expect(policy.keys["alice"] == Fixtures.alice.verifyingKey)
        #expect(policy.environments["staging"] == .init(threshold: 1, keys: ["ci", "alice"], rollbackThreshold: 1))
        #expect(policy.environments["production"]?.threshold == 2)
        #expect(policy.verifyingKeys(for: "production").count == 3)
    }

    @Test func maxValidityAndRequireTargetsAreReadAndBounded() throws {
        let policy = try parse("""
            keys: {alice: alice.pub}
            environments:
              staging: {threshold: 1, keys: [alice]}
              production: {threshold: 1, keys: [alice], maxValidity: 7d, requireTargets: true}
            """)
        #expect(policy.environments["production"]?.maxValidity == .minutes(7 * 24 * 60))
        #expect(policy.environments["production"]?.requireTargets == true)
        #expect(policy.environments["staging"]?.maxValidity == nil)
        #expect(policy.environments["staging"]?.requireTargets == false)
        // Below the validity of the controller's returns, or beyond the protocol's bound.
        for bad in ["30m", "367d", "soon"] {
            let error = parseError("keys: {alice: alice.pub}\nenvironments:\n  p: {threshold: 1, keys: [alice], maxValidity: \(bad)}\n")
            #expect(error?.code == .invalidValue, "\(bad)")
            #expect(error?.line == 3)
        }
        #expect(parseError("keys: {alice: alice.pub}\nenvironments:\n  p: {threshold: 1, keys: [alice], requireTargets: maybe}\n")?.code == .invalidValue)
    }

    @Test func aPrivateKeyFileYieldsItsPublicHalf() throws {
        let policy = try parse("keys: {alice: alice.key}\nenvironments: {staging: {threshold: 1, keys: [alice]}}\n")
        #expect(policy.keys["alice"] == Fixtures.alice.verifyingKey)
    }

    @Test(arguments: [
        ("keys: [unclosed\n", "invalid_yaml", 2),
        ("", "invalid_yaml", 1),
        ("keys: {alice: alice.pub}\n", "missing_field", 1),
        ("keys: {alice: alice.pub}\nenvironments:\n  staging: {threshold: 1, keys: [alice]}\nextra: 1\n", "unknown_field", 4),
        ("keys: {alice: missing.pub}\nenvironments: {}\n", "key_unreadable", 1),
        ("keys:\n  alice: alice.pub\nenvironments:\n  staging:\n    threshold: 1\n    keys: [alice, dave]\n", "unknown_key", 6),
        ("keys:\n  alice: alice.pub\nenvironments:\n  staging:\n    threshold: 2\n    keys: [alice]\n", "invalid_value", 5),
        ("keys:\n  alice: alice.pub\nenvironments:\n  staging:\n    threshold: zero\n    keys: [alice]\n", "invalid_value", 5),
        ("keys:\n  alice: alice.pub\nenvironments:\n  staging:\n    threshold: 1\n    keys: [alice]\n    treshold: 1\n", "unknown_field", 7),
        ("keys:\n  alice: alice.pub\nenvironments:\n  Staging:\n    threshold: 1\n    keys: [alice]\n", "invalid_value", 5),
        ("keys: {}\nenvironments: {}\n", "no_trusted_keys", 1),
        ("keys:\n  alice: alice.pub\nenvironments:\n  staging: {threshold: 1, keys: [alice], rollbackThreshold: 3}\n", "invalid_value", 4),
        ("keys:\n  alice: alice.pub\nenvironments:\n  staging: {threshold: 1, keys: [alice, alice]}\n", "invalid_value", 4),
        ("keys:\n  alice: alice.pub\n  alice: bob.pub\nenvironments: {}\n", "invalid_yaml", 3),
        ("- just\n- a list\n", "invalid_value", 1),
    ])
    func errorsNameTheFileTheLineAndTheProblem(yaml: String, code: String, line: Int) throws {
        let error = try #require(parseError(yaml))
        #expect(error.code.rawValue == code, "\(error)")
        #expect(error.file == "trust.yaml")
        #expect(error.line == line, "\(error)")
        #expect(error.description.contains("trust.yaml:\(line)"))
    }

    @Test func aWrongKeyTypeIsNamed() throws {
        let ecdsa = """
            -----BEGIN PUBLIC KEY-----
            MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEVs/o5+uQbTjL3chynL4wXgUg2R9
            q9UU8I5mEovUf86QZ7kOBIjJwqnzD1omageEHWwHdBO6B+dFabmdT9POxg==
            -----END PUBLIC KEY-----
            """
        var caught: ConfigurationError?
        do {
            _ = try TrustPolicy.parse(
                yaml: "keys: {alice: ec.pub}\nenvironments: {staging: {threshold: 1, keys: [alice]}}\n",
                file: "trust.yaml", readKey: { _ in ecdsa })
        } catch {
            caught = error
        }
        let error = try #require(caught)
        #expect(error.code == .wrongKeyType)
        #expect(error.message.contains("ECDSA"))
    }
}
