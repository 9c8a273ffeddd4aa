@testable import BatonController
import BatonProtocol
import Foundation

/// Releases, hosts and requests for the rollout state machine's and runner's tests: the
/// rollout deploys `v2` (serial 10) over hosts that run `v1` (serial 5), approved with
/// payload digest `digest-v1`.
enum RolloutFixture {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    static let app = "web"

    static func manifest(_ release: String, serial: UInt64) -> Manifest {
        Manifest(
            app: app, release: release, serial: serial, environment: "staging", issuedAt: t0,
            expiresAt: t0.addingTimeInterval(86_400),
            artifact: ArtifactReference(sha256: String(repeating: release == "v2" ? "b" : "a", count: 64), size: 100, format: .tarGz))
    }

    static let v2 = manifest("v2", serial: 10)

    static func held(_ release: String, serial: UInt64, digest: String) -> HeldRelease {
        HeldRelease(release: release, approved: manifest(release, serial: serial), approvedPayloadDigest: digest, approvedBy: [])
    }

    /// A host on `current` that holds the approved manifests of `held`.
    static func status(current: String? = "v1", previous: String? = nil, lastSerial: UInt64 = 5,
                       held: [HeldRelease] = [held("v1", serial: 5, digest: "digest-v1")]) -> AppStatus {
        AppStatus(app: app, current: current, previous: previous, lastSerial: lastSerial, lastDeploymentID: "d-\(current ?? "none")",
                  lastPhase: .succeeded, releases: held.map(\.release), succeededReleases: held.map(\.release), held: held)
    }

    static func hostIDs(_ count: Int) -> [String] { (1...count).map { "host-\($0)" } }

    static func request(hosts count: Int, key: SigningKey? = SigningKey(),
                        _ configure: (inout RolloutStrategy) -> Void = { _ in }) -> RolloutRequest {
        var strategy = RolloutStrategy()
        configure(&strategy)
        let hosts = hostIDs(count).enumerated().map { index, id in
            Fleet.Host(id: id, address: "127.0.0.1:\(17_000 + index)", environment: "staging")
        }
        return RolloutRequest(
            rolloutID: "20261206-000000-web-abcdef", envelope: Array("envelope-v2".utf8), manifest: v2, hosts: hosts,
            strategy: strategy, artifactFile: nil, revertKey: key)
    }
}
