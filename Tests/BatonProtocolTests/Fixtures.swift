import BatonProtocol
import Foundation

/// Keys, policies and manifests for the unit tests, made in memory.
enum Fixtures {
    static let alice = try! SigningKey(seed: Array(repeating: 1, count: 32))
    static let bob = try! SigningKey(seed: Array(repeating: 2, count: 32))
    static let carol = try! SigningKey(seed: Array(repeating: 3, count: 32))
    static let mallory = try! SigningKey(seed: Array(repeating: 9, count: 32))

    static let now = RFC3339.parse("2026-11-21T12:00:00Z")!

    static let policy = TrustPolicy(
        keys: ["alice": alice.verifyingKey, "bob": bob.verifyingKey, "carol": carol.verifyingKey],
        environments: [
            "staging": .init(threshold: 1, keys: ["alice", "bob"]),
            "production": .init(threshold: 2, keys: ["alice", "bob", "carol"], rollbackThreshold: 1),
        ])

    static func manifest(
        app: String = "web", release: String = "v2", serial: UInt64 = 10, environment: String = "staging",
        targets: [String]? = nil, issuedAt: Date? = nil, expiresAt: Date? = nil
    ) -> Manifest {
        Manifest(
            app: app, release: release, serial: serial, environment: environment, targets: targets,
            issuedAt: issuedAt ?? now.addingTimeInterval(-60), expiresAt: expiresAt ?? now.addingTimeInterval(86_400),
            artifact: ArtifactReference(sha256: String(repeating: "ab", count: 32), size: 1024, format: .tarGz),
            hooks: Hooks(activate: Hook(command: .argv(["systemctl", "restart", "web"]))),
            health: HealthPolicy(checks: [.http(url: "http://127.0.0.1:8080/health", expectStatus: .success, bodyContains: "ok")]),
            bake: .seconds(30), keep: 3, notes: "Faster checkout", owner: "team-web", source: "git:abc123")
    }

    static func payload(_ manifest: Manifest) -> [UInt8] {
        Array(try! BatonJSON.encode(manifest))
    }

    static func envelope(_ manifest: Manifest, signedBy keys: [SigningKey], payloadType: String = Manifest.payloadType) -> Envelope {
        envelope(payload: payload(manifest), signedBy: keys, payloadType: payloadType)
    }

    static func envelope(payload: [UInt8], signedBy keys: [SigningKey], payloadType: String = Manifest.payloadType) -> Envelope {
        var envelope = Envelope(payloadType: payloadType, payload: payload)
        for key in keys { envelope.sign(with: key) }
        return envelope
    }

    static func verify(
        _ envelope: Envelope, host: HostIdentity = HostIdentity(hostID: "web-1", environment: "staging"),
        history: AppHistory = .none, policy: TrustPolicy = policy, now: Date = now
    ) -> Result<VerifiedManifest, VerificationError> {
        Result { () throws(VerificationError) in
            try ManifestVerifier.verify(
                envelope: envelope.serialized(), policy: policy, host: host, history: { _ in history }, now: now)
        }
    }
}

extension Result where Failure == VerificationError {
    var code: VerificationCode? {
        if case .failure(let error) = self { return error.code }
        return nil
    }

    var message: String? {
        if case .failure(let error) = self { return error.message }
        return nil
    }
}
