import BatonAgent
import BatonProtocol
import BatonTestSupport
import Foundation
import Logging

/// A host in a temporary directory: a signing key, a trust policy, a `batond.yaml`, a
/// data directory, and helpers to make real tar.gz artifacts and signed envelopes.
final class AgentFixture: @unchecked Sendable {
    let dir: TemporaryDirectory
    /// "ci": signs every envelope unless told otherwise, and meets the threshold alone
    /// when it is 1.
    let key = SigningKey()
    /// Two more approvers the trust policy lists, for thresholds above 1.
    let alice = SigningKey()
    let bob = SigningKey()
    let hostID: String
    let environment: String
    var serial: UInt64 = 0
    let app = "web"

    var configPath: String { dir.child("batond.yaml") }
    let dataDirectory: String
    var layout: DataLayout { DataLayout(root: dataDirectory) }

    /// `threshold`: distinct signatures of ci, alice and bob a new release needs; a return
    /// to a held release needs one (`rollbackThreshold: 1`).
    init(hostID: String = "host-1", environment: String = "staging", dataDirectory: String? = nil,
         extraConfig: String = "", threshold: Int = 1) throws {
        dir = try TemporaryDirectory(prefix: "baton-agent")
        self.hostID = hostID
        self.environment = environment
        self.dataDirectory = dataDirectory ?? dir.child("data")
        try key.verifyingKey.pem.write(toFile: dir.child("ci.pub"), atomically: false, encoding: .utf8)
        try alice.verifyingKey.pem.write(toFile: dir.child("alice.pub"), atomically: false, encoding: .utf8)
        try bob.verifyingKey.pem.write(toFile: dir.child("bob.pub"), atomically: false, encoding: .utf8)
        try """
            keys:
              ci: ci.pub
              alice: alice.pub
              bob: bob.pub
            environments:
              \(environment): {threshold: \(threshold), keys: [ci, alice, bob], rollbackThreshold: 1}
            """.write(toFile: dir.child("trust.yaml"), atomically: false, encoding: .utf8)
        try """
            hostId: \(hostID)
            environment: \(environment)
            dataDir: \(self.dataDirectory)
            trust: trust.yaml
            \(extraConfig)
            """.write(toFile: configPath, atomically: false, encoding: .utf8)
    }

    func remove() { dir.remove() }

    var configuration: AgentConfiguration { get throws { try AgentConfiguration.load(configPath) } }

    func engine() throws -> DeploymentEngine {
        let configuration = try self.configuration
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return try DeploymentEngine(configuration: configuration, policy: try configuration.loadTrustPolicy(), logger: logger)
    }

    struct Artifact {
        let path: String
        let sha256: String
        let size: UInt64
        /// Relative path → content, as packed.
        let files: [String: String]
    }

    /// A real tar.gz made by the system tar from a directory holding `files` plus VERSION.
    func artifact(_ release: String, files: [String: String] = [:], extraFiles: Int = 0) throws -> Artifact {
        let source = dir.child("src-\(release)-\(UInt32.random(in: 0...UInt32.max))")
        var all = files
        all["VERSION"] = release + "\n"
        for i in 0..<extraFiles { all["lib/part-\(i / 100)/file-\(i).txt"] = "\(release) file \(i)\n" + String(repeating: "x", count: i % 300) }
        for (name, content) in all {
            let path = "\(source)/\(name)"
            try FileManager.default.createDirectory(
                atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try content.write(toFile: path, atomically: false, encoding: .utf8)
        }
        let out = dir.child("\(release)-\(UInt32.random(in: 0...UInt32.max)).tar.gz")
        let result = try ProcessRunner.run("/bin/tar", ["-czf", out, "-C", source, "."])
        guard result.status == 0 else { throw TestSupportError("tar failed: \(result.stderr)") }
        try FileManager.default.removeItem(atPath: source)
        return try artifact(at: out, files: all)
    }

    func artifact(at path: String, files: [String: String] = [:]) throws -> Artifact {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return Artifact(path: path, sha256: Digest.sha256Hex(data), size: UInt64(data.count), files: files)
    }

    /// Signs a manifest for `artifact` with the next serial and writes the envelope.
    func envelope(
        _ release: String, artifact: Artifact, format: ArtifactFormat = .tarGz, hooks: Hooks? = nil,
        health: HealthPolicy? = nil, bake: BatonDuration? = nil, keep: Int? = nil, targets: [String]? = nil,
        size: UInt64? = nil, sha256: String? = nil, serial: UInt64? = nil, signers: [SigningKey]? = nil, url: String? = nil
    ) throws -> (path: String, bytes: [UInt8]) {
        if let serial { self.serial = serial } else { self.serial += 1 }
        let now = Date()
        let manifest = Manifest(
            app: app, release: release, serial: self.serial, environment: environment, targets: targets,
            issuedAt: now.addingTimeInterval(-60), expiresAt: now.addingTimeInterval(3600),
            artifact: ArtifactReference(sha256: sha256 ?? artifact.sha256, size: size ?? artifact.size, format: format, url: url),
            hooks: hooks, health: health, bake: bake, keep: keep)
        return try envelope(manifest, signers: signers ?? [key])
    }

    /// Signs `manifest` as it is (its serial becomes the fixture's last) and writes the envelope.
    func envelope(_ manifest: Manifest, signers: [SigningKey]) throws -> (path: String, bytes: [UInt8]) {
        serial = max(serial, manifest.serial)
        var envelope = Envelope(payloadType: Manifest.payloadType, payload: Array(try BatonJSON.encode(manifest)))
        for signer in signers { envelope.sign(with: signer) }
        let path = dir.child("\(manifest.release)-\(manifest.serial).envelope.json")
        let data = envelope.serialized()
        try data.write(to: URL(fileURLWithPath: path))
        return (path, Array(data))
    }

    /// What `current` names, from the symlink.
    func current() -> String? {
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: layout.currentLink(app)) else {
            return nil
        }
        return (target as NSString).lastPathComponent
    }

    func currentVersion() -> String? {
        try? String(contentsOfFile: layout.currentLink(app) + "/VERSION", encoding: .utf8)
    }

    /// Every file under `current` equals what the archive packed.
    func currentMatches(_ artifact: Artifact) -> Bool {
        for (name, content) in artifact.files {
            guard let actual = try? String(contentsOfFile: "\(layout.currentLink(app))/\(name)", encoding: .utf8),
                actual == content
            else { return false }
        }
        return true
    }

    func stagingEntries() -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: layout.stagingRoot(app))) ?? []
    }

    /// Trees retention dropped that are still waiting for their removal.
    func trashEntries() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: layout.trashRoot(app))) ?? []).sorted()
    }

    func releasesOnDisk() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: layout.releasesDirectory(app))) ?? []).sorted()
    }

    func temporaryArtifactEntries() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: layout.artifactsTemporaryDirectory)) ?? []).sorted()
    }

    /// `batond apply` is in its one read of the artifact file: unpacking into `artifacts/tmp`.
    func onePassUnpackInProgress() -> Bool {
        temporaryArtifactEntries().contains { $0.hasPrefix("unpack.") }
    }

    /// Every file kept in the artifact cache hashes to its name.
    func cachedArtifactsMatchTheirNames() -> Bool {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: layout.artifactsDirectory)) ?? []
        return names.allSatisfy { name in
            guard let bytes = FileManager.default.contents(atPath: layout.artifact(name)) else { return false }
            return Digest.sha256Hex(bytes) == name
        }
    }
}

extension DeploymentEngine {
    /// Submits and waits for the end.
    func deploy(_ envelope: (path: String, bytes: [UInt8]), artifact: String?) async throws -> DeploymentRecord {
        let accepted = try await submit(envelope: envelope.bytes, artifactFile: artifact)
        guard let record = await wait(for: accepted.id) else { throw TestSupportError("no record for \(accepted.id)") }
        return record
    }
}
