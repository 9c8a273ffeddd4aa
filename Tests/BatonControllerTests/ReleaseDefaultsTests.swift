import BatonController
import BatonProtocol
import Foundation
import Testing

/// How long a release is valid and which hosts it names when nobody says: short, and
/// always inside what the agents' trust policy accepts.
@Suite struct ReleaseDefaultsTests {
    let key = SigningKey()
    let day = BatonDuration.minutes(24 * 60)

    func policy(maxValidity: BatonDuration? = nil, requireTargets: Bool = false) -> TrustPolicy {
        TrustPolicy(
            keys: ["ci": key.verifyingKey],
            environments: [
                "production": .init(threshold: 1, keys: ["ci"], maxValidity: maxValidity, requireTargets: requireTargets),
                "staging": .init(threshold: 1, keys: ["ci"]),
            ])
    }

    @Test func theDefaultIsADayOrTheEnvironmentsMaxValidityIfShorter() throws {
        #expect(ReleaseBuilder.defaultValidity == day)
        #expect(try ReleaseBuilder.validity(requested: nil, environment: "production", policy: nil) == day)
        #expect(try ReleaseBuilder.validity(requested: nil, environment: "staging", policy: policy()) == day)
        #expect(try ReleaseBuilder.validity(requested: nil, environment: "production", policy: policy(maxValidity: .minutes(360))) == .minutes(360))
        #expect(try ReleaseBuilder.validity(requested: nil, environment: "production", policy: policy(maxValidity: .minutes(7 * 24 * 60))) == day)
    }

    @Test func aLongerRequestIsRefusedBeforeAnyAgentWould() throws {
        let week = BatonDuration.minutes(7 * 24 * 60)
        #expect(try ReleaseBuilder.validity(requested: week, environment: "staging", policy: policy()) == week)
        do {
            _ = try ReleaseBuilder.validity(requested: week, environment: "production", policy: policy(maxValidity: day))
            Issue.record("a week was accepted under maxValidity 24h")
        } catch {
            #expect(error.code == .validityTooLong)
            #expect(error.message.contains("production"))
        }
    }

    @Test func aManifestBuiltWithTheDefaultsPassesTheVerifier() throws {
        let policy = policy(maxValidity: .minutes(12 * 60), requireTargets: true)
        let hosts = [
            Fleet.Host(id: "web-2", address: "10.0.0.2:7443", environment: "production"),
            Fleet.Host(id: "web-1", address: "10.0.0.1:7443", environment: "production"),
            Fleet.Host(id: "stage-1", address: "10.0.1.1:7443", environment: "staging"),
        ]
        let targets = try ReleaseBuilder.targets(requested: [], environment: "production", fleetHosts: hosts, policy: policy)
        #expect(targets == ["web-1", "web-2"])
        #expect(try ReleaseBuilder.targets(requested: [], environment: "staging", fleetHosts: hosts, policy: policy) == nil)
        #expect(try ReleaseBuilder.targets(requested: ["web-2"], environment: "production", fleetHosts: hosts, policy: policy) == ["web-2"])
        #expect(throws: ControllerError.self) {
            try ReleaseBuilder.targets(requested: ["stage-1"], environment: "production", fleetHosts: hosts, policy: policy)
        }

        let now = Date()
        let validity = try ReleaseBuilder.validity(requested: nil, environment: "production", policy: policy)
        let manifest = try ReleaseBuilder.manifest(
            definition: AppDefinition(app: "web", environments: ["production"]), release: "v1", environment: "production",
            artifact: ArtifactReference(sha256: String(repeating: "ab", count: 32), size: 10, format: .tarGz), serial: 1,
            targets: targets, now: now, validFor: validity)
        #expect(manifest.expiresAt.timeIntervalSince(manifest.issuedAt) == 12 * 3600)
        var envelope = Envelope(payloadType: Manifest.payloadType, payload: Array(try BatonJSON.encode(manifest)))
        envelope.sign(with: key)
        let verified = try ManifestVerifier.verify(
            envelope: envelope, policy: policy, host: HostIdentity(hostID: "web-1", environment: "production"),
            history: { _ in .none }, now: now)
        #expect(verified.manifest.targets == ["web-1", "web-2"])
    }
}
