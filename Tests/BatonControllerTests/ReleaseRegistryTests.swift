import BatonController
import BatonProtocol
import BatonTestSupport
import Foundation
import Synchronization
import Testing

/// The release registry (releases, approvals, serial counters) on both stores: the same
/// tests against SQLite and PostgreSQL, as the store suite does for the history.
@Suite("Release registry (SQLite and PostgreSQL)")
struct ReleaseRegistryTests {
    static func registry(_ location: StoreLocation) throws -> any HistoryStore & ReleaseRegistry {
        try #require(try location.open() as? any HistoryStore & ReleaseRegistry)
    }

    static func release(_ name: String, serial: UInt64, environment: String = "staging", artifact: String = "a", url: String? = nil) throws
        -> RegisteredRelease
    {
        let manifest = Manifest(
            app: "web", release: name, serial: serial, environment: environment, issuedAt: Date(timeIntervalSince1970: 1_800_000_000),
            expiresAt: Date(timeIntervalSince1970: 1_800_086_400),
            artifact: ArtifactReference(sha256: String(repeating: artifact, count: 64), size: 100, format: .tarGz, url: url))
        return RegisteredRelease(
            manifest: manifest, payload: Array(try BatonJSON.encode(manifest, pretty: true)), artifactHolder: url == nil ? "ci@runner-1" : nil,
            artifactPath: url == nil ? "/var/lib/baton/artifacts/sha256/\(String(repeating: artifact, count: 64))" : nil,
            createdBy: "ci@runner-1", createdAt: Date(timeIntervalSince1970: 1_800_000_000 + Double(serial)))
    }

    @Test("serials: one counter per app and environment, above the floor it is given and above every serial it handed out", arguments: StoreKind.allCases)
    func serials(kind: StoreKind) throws {
        let location = try kind.makeLocation()
        defer { location.remove() }
        let store = try Self.registry(location)
        #expect(try store.nextSerial(app: "web", environment: "staging", above: 4) == 5)
        // A lower floor (a runner whose agents report less) still moves on.
        #expect(try store.nextSerial(app: "web", environment: "staging", above: 0) == 6)
        // A higher floor (a host that saw a revert) jumps there.
        #expect(try store.nextSerial(app: "web", environment: "staging", above: 20) == 21)
        #expect(try store.nextSerial(app: "web", environment: "production", above: 0) == 1)
        #expect(try store.nextSerial(app: "api", environment: "staging", above: 0) == 1)
        try store.noteSerial(app: "web", environment: "staging", 30)
        try store.noteSerial(app: "web", environment: "staging", 10)
        #expect(try store.nextSerial(app: "web", environment: "staging", above: 0) == 31)
        // A second controller on the same store continues the same counter.
        #expect(try Self.registry(location).nextSerial(app: "web", environment: "staging", above: 0) == 32)
    }

    @Test("10 controllers asking for serials at once never get the same one", arguments: StoreKind.allCases)
    func concurrentSerials(kind: StoreKind) throws {
        let location = try kind.makeLocation()
        defer { location.remove() }
        let controllers = 10, each = 15
        let stores = try (0..<controllers).map { _ in try Self.registry(location) }
        let issued = Mutex<[UInt64]>([])
        let failures = Mutex<[String]>([])
        PostgresLockTests.concurrently(controllers) { index in
            for _ in 0..<each {
                do {
                    let serial = try stores[index].nextSerial(app: "web", environment: "production", above: 0)
                    issued.withLock { $0.append(serial) }
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }
        }
        #expect(failures.withLock { $0 } == [])
        #expect(issued.withLock { $0 }.sorted() == (1...UInt64(controllers * each)).map { $0 })
    }

    @Test("releases are registered once per serial, found by name and by artifact, and never overwritten", arguments: StoreKind.allCases)
    func registration(kind: StoreKind) throws {
        let location = try kind.makeLocation()
        defer { location.remove() }
        let store = try Self.registry(location)
        let v2 = try Self.release("v2", serial: 5)
        try store.registerRelease(v2)
        try store.registerRelease(v2)  // the same again: nothing changes
        #expect(try store.registeredReleases(app: "web", limit: 10) == [v2])
        // Another manifest under a serial already registered is refused, and loses nothing.
        var other = try Self.release("v2", serial: 5, artifact: "b")
        other.createdBy = "bob@laptop"
        let conflict = #expect(throws: ControllerError.self) { try store.registerRelease(other) }
        #expect(conflict?.code == .releaseConflict)
        #expect(try store.registeredReleases(app: nil, limit: 10) == [v2])
        // v2 created again (a new serial) and once for production: by name, newest first.
        let again = try Self.release("v2", serial: 6, artifact: "c")
        let production = try Self.release("v2", serial: 1, environment: "production", artifact: "d", url: "https://artifacts.example/web-v2.tar.gz")
        try store.registerRelease(again)
        try store.registerRelease(production)
        #expect(try store.registeredRelease(app: "web", release: "v2", environment: "staging") == [again, v2])
        #expect(try store.registeredRelease(app: "web", release: "v2", environment: nil).map(\.serial) == [6, 5, 1])
        #expect(try store.registeredRelease(app: "web", release: "v9", environment: nil).isEmpty)
        #expect(try store.registeredReleases(artifactSHA256: String(repeating: "a", count: 64)) == [v2])
        let fetched = try #require(try store.registeredRelease(app: "web", release: "v2", environment: "production").first)
        #expect(fetched.artifactURL == "https://artifacts.example/web-v2.tar.gz" && fetched.artifactHolder == nil)
        #expect(fetched.artifactLocation == "https://artifacts.example/web-v2.tar.gz")
        #expect(v2.artifactLocation.hasPrefix("ci@runner-1:/var/lib/baton/artifacts/"))
        #expect(try fetched.manifest().environment == "production")
        // Resolving APP@RELEASE: ambiguous across environments until one is named.
        let ambiguous = #expect(throws: ControllerError.self) { try ReleaseApprovals.resolve("web@v2", environment: nil, in: store) }
        #expect(ambiguous?.code == .wrongEnvironment && ambiguous?.message.contains("production and staging") == true)
        #expect(try ReleaseApprovals.resolve("web@v2", environment: "staging", in: store) == again)
        let unknown = #expect(throws: ControllerError.self) { try ReleaseApprovals.resolve("web@v9", environment: nil, in: store) }
        #expect(unknown?.code == .releaseUnknown)
        let invalid = #expect(throws: ControllerError.self) { try ReleaseApprovals.resolve("../x@v2", environment: nil, in: store) }
        #expect(invalid?.code == .invalidName)
    }

    @Test("approvals from several machines count against the threshold; the envelope they make is what agents accept", arguments: StoreKind.allCases)
    func approvals(kind: StoreKind) throws {
        let location = try kind.makeLocation()
        defer { location.remove() }
        let (alice, bob, carol, mallory) = (SigningKey(), SigningKey(), SigningKey(), SigningKey())
        let policy = TrustPolicy(
            keys: ["alice": alice.verifyingKey, "bob": bob.verifyingKey, "carol": carol.verifyingKey],
            environments: ["staging": TrustPolicy.Environment(threshold: 2, keys: ["alice", "bob", "carol"])])
        let first = try Self.registry(location), second = try Self.registry(location)
        let v2 = try Self.release("v2", serial: 5)
        try first.registerRelease(v2)
        let now = Date(timeIntervalSince1970: 1_800_000_100)

        // A key the policy does not count is refused before anything is stored.
        let untrusted = #expect(throws: ControllerError.self) { try ReleaseApprovals.approve(v2, with: mallory, policy: policy, by: "mallory@x", now: now) }
        #expect(untrusted?.code == .untrustedKey)
        #expect(try first.addApproval(try ReleaseApprovals.approve(v2, with: alice, policy: policy, by: "alice@laptop", now: now)))
        // Twice with one key adds nothing.
        #expect(try !second.addApproval(try ReleaseApprovals.approve(v2, with: alice, policy: policy, by: "alice@other", now: now)))
        var status = ReleaseApprovals.status(of: v2, approvals: try second.approvals(app: "web", environment: "staging", serial: 5), policy: policy)
        #expect(status == .init(threshold: 2, approvedBy: ["alice"], missing: ["bob", "carol"], ignored: []))
        #expect(!status.isMet && status.summary == "1 of 2 (alice)")
        // Not yet: the rollout is refused naming who may still approve.
        let short = #expect(throws: ControllerError.self) { try ReleaseApprovals.approvedEnvelope("web@v2", environment: nil, registry: second, policy: policy) }
        #expect(short?.code == .thresholdNotMet && short?.message.contains("1 of 2 (alice)") == true && short?.message.contains("bob, carol") == true)
        // A forged row (a signature over other bytes) does not count.
        try second.addApproval(ReleaseApproval(
            app: "web", environment: "staging", serial: 5, keyid: carol.keyid, signature: carol.signature(for: Array("other".utf8)),
            approvedBy: "someone@db", approvedAt: now.addingTimeInterval(1)))
        status = ReleaseApprovals.status(of: v2, approvals: try first.approvals(app: "web", environment: "staging", serial: 5), policy: policy)
        #expect(status.approvedBy == ["alice"] && status.ignored.count == 1)

        #expect(try second.addApproval(try ReleaseApprovals.approve(v2, with: bob, policy: policy, by: "bob@desk", now: now.addingTimeInterval(2))))
        let approved = try ReleaseApprovals.approvedEnvelope("web@v2", environment: "staging", registry: first, policy: policy)
        #expect(approved.release == v2)
        // The assembled envelope is the registered payload with the signatures: an agent's
        // verifier accepts it under the threshold of 2.
        let verified = try ManifestVerifier.verify(
            envelope: approved.envelope, policy: policy, host: HostIdentity(hostID: "host-1", environment: "staging"),
            history: { _ in .none }, now: now)
        #expect(verified.signers.flatMap(\.names).sorted() == ["alice", "bob"])
        #expect(verified.payload == v2.payload)
        #expect(try first.approvals(app: "web", environment: "staging", serial: 5).map(\.approvedBy) == ["alice@laptop", "someone@db", "bob@desk"])

        // Carol signed the manifest file offline (`manifest sign`): her signature is taken from
        // the envelope; mallory's beside it, and envelopes of other bytes, are not.
        var signed = Envelope(payloadType: Manifest.payloadType, payload: v2.payload)
        signed.sign(with: carol)
        signed.sign(with: mallory)
        let imported = try ReleaseApprovals.imported(Array(signed.serialized()), into: v2, policy: policy, by: "carol@offline", now: now)
        #expect(imported.map(\.keyid) == [carol.keyid] && imported.map(\.approvedBy) == ["carol@offline"])
        var other = Envelope(payloadType: Manifest.payloadType, payload: Array("{}".utf8))
        other.sign(with: carol)
        let wrongBytes = #expect(throws: ControllerError.self) {
            try ReleaseApprovals.imported(Array(other.serialized()), into: v2, policy: policy, by: "x", now: now)
        }
        #expect(wrongBytes?.code == .envelopeInvalid)
        var byMallory = Envelope(payloadType: Manifest.payloadType, payload: v2.payload)
        byMallory.sign(with: mallory)
        let nobody = #expect(throws: ControllerError.self) {
            try ReleaseApprovals.imported(Array(byMallory.serialized()), into: v2, policy: policy, by: "x", now: now)
        }
        #expect(nobody?.code == .untrustedKey)
    }
}
