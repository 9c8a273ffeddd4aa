@testable import BatonAgent
@testable import BatonArchive
import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

/// A cached copy is consumed by the unpack that reads it (`ArtifactCache.consume`): removed
/// once it proved to be the artifact, before the tree is synced, so that pages the kernel
/// had not yet written back are dropped unwritten and a deployment writes its artifact's
/// bytes once, as the tree. `batond apply` keeps no copy at all.
@Suite struct ConsumedCopyTests {
    /// A tar.gz of `megabytes` MiB of random bytes (they do not compress) plus VERSION.
    func bigArtifact(_ fixture: AgentFixture, _ release: String, megabytes: Int) throws -> AgentFixture.Artifact {
        let source = fixture.dir.child("src-\(release)")
        try FileManager.default.createDirectory(atPath: "\(source)/lib", withIntermediateDirectories: true)
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<(megabytes << 20) / 8).map { _ in generator.next() as UInt64 }
        try bytes.withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: "\(source)/lib/blob.bin")) }
        try (release + "\n").write(toFile: "\(source)/VERSION", atomically: false, encoding: .utf8)
        let out = fixture.dir.child("\(release).tar.gz")
        let result = try ProcessRunner.run("/bin/tar", ["-czf", out, "-C", source, "."])
        guard result.status == 0 else { throw TestSupportError("tar failed: \(result.stderr)") }
        try FileManager.default.removeItem(atPath: source)
        return try fixture.artifact(at: out, files: ["VERSION": release + "\n"])
    }

    /// Uploads `artifact` through the engine in 64 KiB pieces, as the API does.
    func upload(_ engine: DeploymentEngine, _ artifact: AgentFixture.Artifact) async throws {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: artifact.path)))
        let upload = try await engine.beginUpload(digest: artifact.sha256, size: artifact.size)
        for start in stride(from: 0, to: bytes.count, by: 64 << 10) {
            try bytes[start..<min(start + (64 << 10), bytes.count)].withUnsafeBytes { try upload.write($0) }
        }
        try upload.finish()
    }

    /// This process's `cancelled_write_bytes` (/proc/self/io): the dirty page-cache bytes
    /// it dropped unwritten by removing or truncating files.
    static func cancelledWriteBytes() -> UInt64? {
        guard let text = try? String(contentsOfFile: "/proc/self/io", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("cancelled_write_bytes:") {
            return UInt64(line.dropFirst("cancelled_write_bytes:".count).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }

    /// True where the data directory's file system keeps files in memory (tmpfs): nothing
    /// is written back there, and nothing is counted as cancelled.
    static func inMemory(_ path: String) -> Bool {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return TreeDurability.fileSystemType(fd).map(TreeDurability.memoryFileSystems.contains) ?? false
    }

    func storedCopies(_ fixture: AgentFixture) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: fixture.layout.artifactsDirectory)) ?? [])
            .filter(Digest.isSHA256Hex)
    }

    @Test("an uploaded copy is gone once its deployment unpacked it, its pages dropped unwritten; another release of the same artifact needs it sent again")
    func uploadedCopyIsConsumed() async throws {
        let fixture = try AgentFixture()
        defer { fixture.remove() }
        let engine = try fixture.engine()
        let v1 = try bigArtifact(fixture, "v1", megabytes: 4)
        try await upload(engine, v1)
        #expect(engine.hasArtifact(v1.sha256), "HEAD answers 200 until a deployment unpacks it")

        let before = Self.cancelledWriteBytes()
        let first = try await engine.deploy(try fixture.envelope("v1", artifact: v1), artifact: nil)
        let after = Self.cancelledWriteBytes()
        #expect(first.phase == .succeeded, "\(first.events.map(\.message))")
        #expect(fixture.currentMatches(v1))
        #expect(!engine.hasArtifact(v1.sha256), "consumed by its unpack")
        #expect(storedCopies(fixture).isEmpty)
        if !Self.inMemory(fixture.layout.root), let before, let after {
            // Without the removal before the sync (or with the copy's writeback started as
            // it arrived) nothing is cancelled: every byte of the copy goes to the disk.
            #expect(after - before >= v1.size / 2, "dirty bytes dropped unwritten: \(after - before) of the copy's \(v1.size)")
        }

        // The release itself is reused without any copy.
        let again = try await engine.deploy(try fixture.envelope("v1", artifact: v1), artifact: nil)
        #expect(again.phase == .succeeded, "\(again.events.map(\.message))")
        #expect(again.events.contains { $0.message.contains("already on disk") }, "\(again.events.map(\.message))")

        // Another release name for the same bytes finds no copy: the controller's HEAD
        // answers 404 and it uploads; without one the deployment says what to do.
        let missing = try await engine.deploy(try fixture.envelope("v1-again", artifact: v1), artifact: nil)
        #expect(missing.phase == .failed)
        #expect(missing.error?.code == "artifact_unavailable", "\(String(describing: missing.error))")
        #expect(fixture.current() == "v1")
        try await upload(engine, v1)
        let sent = try await engine.deploy(try fixture.envelope("v1-again", artifact: v1), artifact: nil)
        #expect(sent.phase == .succeeded, "\(sent.events.map(\.message))")
        #expect(fixture.current() == "v1-again")
        #expect(storedCopies(fixture).isEmpty)
    }

    @Test("batond apply unpacks the operator's file and keeps no copy in the cache")
    func applyKeepsNoCopy() async throws {
        let fixture = try AgentFixture()
        defer { fixture.remove() }
        let engine = try fixture.engine()
        let v1 = try fixture.artifact("v1", extraFiles: 20)
        let record = try await engine.deploy(try fixture.envelope("v1", artifact: v1), artifact: v1.path)
        #expect(record.phase == .succeeded, "\(record.events.map(\.message))")
        #expect(fixture.currentMatches(v1))
        #expect(storedCopies(fixture).isEmpty)
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: fixture.layout.artifactsTemporaryDirectory)) ?? []).isEmpty)
    }
}
