import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

/// Baton's envelopes against an independent DSSE implementation: Python's
/// securesystemslib (`Protocol/interop/dsse_interop.py`). These tests need it and cryptography
/// in the test virtual environment (scripts/test-python); without it they fail and say so.
@Suite struct InteropTests {
    static let now = RFC3339.parse("2026-11-21T12:00:00Z")!
    static let staging = HostIdentity(hostID: "web-1", environment: "staging")
    static let production = HostIdentity(hostID: "prod-1", environment: "production")

    static func payload(environment: String = "staging", serial: UInt64 = 7) throws -> [UInt8] {
        let manifest = Manifest(
            app: "web", release: "2026.11.21-1", serial: serial, environment: environment,
            issuedAt: now.addingTimeInterval(-3600), expiresAt: now.addingTimeInterval(7 * 86_400),
            artifact: ArtifactReference(sha256: Digest.sha256Hex(Array("interop artifact".utf8)), size: 4096, format: .tarGz),
            hooks: Hooks(activate: Hook(command: .argv(["systemctl", "restart", "web"]))),
            health: HealthPolicy(checks: [.tcp(host: "127.0.0.1", port: 8080)]),
            notes: "signed by securesystemslib or by Baton", owner: "team-web")
        return Array(try BatonJSON.encode(manifest, pretty: true))
    }

    static func verify(_ bytes: some DataProtocol, host: HostIdentity = staging) throws -> Result<VerifiedManifest, VerificationError> {
        let policy = try ProtocolFiles.trustPolicy()
        return Result { () throws(VerificationError) in
            try ManifestVerifier.verify(envelope: bytes, policy: policy, host: host, history: { _ in .none }, now: now)
        }
    }

    /// securesystemslib signs `payload` with the named test keys; returns the envelope bytes.
    static func signWithSecuresystemslib(_ payload: [UInt8], keys: [String], in dir: TemporaryDirectory,
                                         sslibKeyIDs: Bool = false) throws -> Data {
        try Python.require(["securesystemslib", "cryptography"], install: Python.interopHint)
        let manifest = dir.child("manifest.json"), out = dir.child("sslib.envelope.json")
        try Data(payload).write(to: URL(fileURLWithPath: manifest))
        var arguments = ["sign", manifest, ProtocolFiles.key(keys[0], private: true), out]
        arguments += keys.dropFirst().map { ProtocolFiles.key($0, private: true) }
        if sslibKeyIDs { arguments.append("--sslib-keyid") }
        let run = try Python.run("interop/dsse_interop.py", arguments)
        try #require(run.status == 0, "dsse_interop.py sign failed (\(run.status)): \(run.stderr)")
        return try Data(contentsOf: URL(fileURLWithPath: out))
    }

    /// securesystemslib verifies the envelope against the named public keys.
    static func verifyWithSecuresystemslib(_ envelope: Data, keys: [String], threshold: Int = 1,
                                           in dir: TemporaryDirectory) throws -> ProcessResult {
        try Python.require(["securesystemslib", "cryptography"], install: Python.interopHint)
        let file = dir.child("envelope-\(UUID().uuidString).json")
        try envelope.write(to: URL(fileURLWithPath: file))
        let run = try Python.run(
            "interop/dsse_interop.py",
            ["verify", file] + keys.map { ProtocolFiles.key($0, private: false) } + ["--threshold=\(threshold)"])
        try #require(run.status == 0 || run.status == 1, "dsse_interop.py verify could not run (\(run.status)): \(run.stderr)")
        return run
    }

    // MARK: securesystemslib signs, Baton verifies

    @Test func securesystemslibEnvelopeVerifiesInBaton() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let payload = try Self.payload()
        let envelope = try Self.signWithSecuresystemslib(payload, keys: ["alice"], in: dir)
        let verified = try Self.verify(envelope).get()
        #expect(verified.signers.map(\.keyid) == [try ProtocolFiles.verifyingKey("alice").keyid])
        #expect(verified.payload == payload)
        #expect(verified.manifest.serial == 7)
    }

    @Test func securesystemslibApprovalsMeetTheProductionThreshold() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let envelope = try Self.signWithSecuresystemslib(
            try Self.payload(environment: "production"), keys: ["alice", "carol"], in: dir)
        let verified = try Self.verify(envelope, host: Self.production).get()
        #expect(Set(verified.signers.map(\.keyid))
            == Set([try ProtocolFiles.verifyingKey("alice").keyid, try ProtocolFiles.verifyingKey("carol").keyid]))
        #expect(verified.requiredSignatures == 2)
    }

    /// securesystemslib's own default keyids name no key Baton knows: they are only hints,
    /// and Baton finds the key that verifies.
    @Test func securesystemslibDefaultKeyidsAreOnlyHints() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let envelope = try Self.signWithSecuresystemslib(try Self.payload(), keys: ["bob"], in: dir, sslibKeyIDs: true)
        let parsed = try Envelope.parse(envelope)
        #expect(parsed.signatures.first?.keyid != (try ProtocolFiles.verifyingKey("bob").keyid))
        #expect(try Self.verify(envelope).get().signers.map(\.keyid) == [try ProtocolFiles.verifyingKey("bob").keyid])
    }

    // MARK: Baton signs, securesystemslib verifies

    @Test func batonEnvelopeVerifiesWithSecuresystemslib() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var envelope = Envelope(payloadType: Manifest.payloadType, payload: try Self.payload(environment: "production"))
        envelope.sign(with: try ProtocolFiles.signingKey("alice"))
        envelope.sign(with: try ProtocolFiles.signingKey("bob"))
        for pretty in [true, false] {
            let run = try Self.verifyWithSecuresystemslib(
                envelope.serialized(pretty: pretty), keys: ["alice", "bob"], threshold: 2, in: dir)
            #expect(run.status == 0, "securesystemslib refused Baton's envelope: \(run.stdout)\(run.stderr)")
        }
        // And Baton agrees with itself on the same bytes.
        #expect(try Self.verify(envelope.serialized(), host: Self.production).get().signers.count == 2)
    }

    /// The committed vectors verify with securesystemslib too (those whose keyids are
    /// Baton's and whose base64 is standard, which is what securesystemslib reads).
    @Test(arguments: ["accept-staging-one-signature", "accept-production-two-signatures", "accept-full-manifest"])
    func vectorVerifiesWithSecuresystemslib(_ name: String) throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let vector = try ProtocolVector.load(name)
        guard case .accept(let signers, _, _, _, _) = vector.expect else {
            Issue.record("\(name) is not an accept vector")
            return
        }
        let names = try VectorTests.testKeyNames.filter { signers.contains(try ProtocolFiles.verifyingKey($0).keyid) }
        let run = try Self.verifyWithSecuresystemslib(Data(vector.envelope), keys: names, threshold: signers.count, in: dir)
        #expect(run.status == 0, "\(name): \(run.stdout)\(run.stderr)")
    }

    // MARK: Tampering fails on both sides

    @Test func tamperedEnvelopesFailOnBothSides() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let original = try Self.payload()
        let altered = try Self.payload(serial: 8)

        // Baton signs, the payload is swapped: securesystemslib refuses.
        var batonEnvelope = Envelope(payloadType: Manifest.payloadType, payload: original)
        batonEnvelope.sign(with: try ProtocolFiles.signingKey("alice"))
        let intact = try Self.verifyWithSecuresystemslib(batonEnvelope.serialized(), keys: ["alice"], in: dir)
        #expect(intact.status == 0, "\(intact.stdout)")
        var tampered = batonEnvelope
        tampered.payload = altered
        let refused = try Self.verifyWithSecuresystemslib(tampered.serialized(), keys: ["alice"], in: dir)
        #expect(refused.status == 1, "securesystemslib accepted a tampered envelope: \(refused.stdout)")
        #expect(Self.code(try Self.verify(tampered.serialized())) == .signatureInvalid)

        // Baton signs over another payloadType, the type is relabelled: both refuse.
        var relabelled = Envelope(payloadType: "application/json", payload: original)
        relabelled.sign(with: try ProtocolFiles.signingKey("alice"))
        relabelled.payloadType = Manifest.payloadType
        #expect(try Self.verifyWithSecuresystemslib(relabelled.serialized(), keys: ["alice"], in: dir).status == 1)
        #expect(Self.code(try Self.verify(relabelled.serialized())) == .signatureInvalid)

        // securesystemslib signs, the payload is swapped: Baton refuses.
        let sslib = try Self.signWithSecuresystemslib(original, keys: ["alice"], in: dir)
        #expect(Self.code(try Self.verify(sslib)) == nil)
        var object = try #require(try JSONSerialization.jsonObject(with: sslib) as? [String: Any])
        object["payload"] = Data(altered).base64EncodedString()
        let sslibTampered = try JSONSerialization.data(withJSONObject: object)
        #expect(Self.code(try Self.verify(sslibTampered)) == .signatureInvalid)
        #expect(try Self.verifyWithSecuresystemslib(sslibTampered, keys: ["alice"], in: dir).status == 1)
    }

    static func code(_ result: Result<VerifiedManifest, VerificationError>) -> VerificationCode? {
        if case .failure(let error) = result { return error.code }
        return nil
    }
}
