@testable import BatonAgent
import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

/// Cached artifacts are not fsynced when stored (`ArtifactCache`), so after a power loss a
/// copy may be torn: every deployment hashes the copy in the read that unpacks it, and a
/// torn one is refused and dropped, with the host left on its release.
@Suite struct TornCacheTests {
    /// A fixture with v1 live, and v2 in the cache as an upload leaves it.
    func withV2Cached(_ body: (AgentFixture, DeploymentEngine, AgentFixture.Artifact) async throws -> Void) async throws {
        let fixture = try AgentFixture()
        defer { fixture.remove() }
        let engine = try fixture.engine()
        let v1 = try fixture.artifact("v1")
        let first = try await engine.deploy(try fixture.envelope("v1", artifact: v1), artifact: v1.path)
        #expect(first.phase == .succeeded)
        let v2 = try fixture.artifact("v2", extraFiles: 40)
        try store(Self.cache(fixture), v2)
        try await body(fixture, engine, v2)
    }

    /// The agent's cache, as the engine sees it (same directory).
    static func cache(_ fixture: AgentFixture) -> ArtifactCache { ArtifactCache(layout: fixture.layout, capacity: 1 << 30) }

    func store(_ cache: ArtifactCache, _ artifact: AgentFixture.Artifact) throws {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: artifact.path)))
        let writer = try cache.beginWrite(digest: artifact.sha256, size: artifact.size)
        try bytes.withUnsafeBytes { try writer.write($0) }
        try writer.finish()
    }

    func expectRefusedAndDropped(
        _ record: DeploymentRecord, _ code: String, _ fixture: AgentFixture, _ engine: DeploymentEngine, _ v2: AgentFixture.Artifact,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async {
        #expect(record.phase == .failed, "\(record.events.map(\.message))", sourceLocation: sourceLocation)
        #expect(record.error?.code == code, "\(String(describing: record.error))", sourceLocation: sourceLocation)
        #expect(record.error?.message.contains("deploy again") == true, sourceLocation: sourceLocation)
        #expect(fixture.current() == "v1", sourceLocation: sourceLocation)
        #expect(fixture.currentVersion() == "v1\n", sourceLocation: sourceLocation)
        #expect(fixture.stagingEntries().isEmpty, sourceLocation: sourceLocation)
        #expect(!fixture.releasesOnDisk().contains("v2"), sourceLocation: sourceLocation)
        #expect(!Self.cache(fixture).contains(v2.sha256), "the torn copy is dropped", sourceLocation: sourceLocation)
        #expect(fixture.cachedArtifactsMatchTheirNames(), sourceLocation: sourceLocation)
    }

    @Test("a cached copy with changed bytes is refused at unpack (digest_mismatch), dropped, and sent anew works")
    func changedBytes() async throws {
        try await withV2Cached { fixture, engine, v2 in
            // One byte flipped in the middle, the size unchanged: only a hash can tell.
            let handle = try #require(FileHandle(forUpdatingAtPath: fixture.layout.artifact(v2.sha256)))
            let middle = v2.size / 2
            try handle.seek(toOffset: middle)
            let byte = try #require(try handle.read(upToCount: 1)?.first)
            try handle.seek(toOffset: middle)
            try handle.write(contentsOf: Data([byte ^ 0x5a]))
            try handle.close()
            #expect(Self.cache(fixture).contains(v2.sha256))

            let refused = try await engine.deploy(try fixture.envelope("v2", artifact: v2), artifact: nil)
            await expectRefusedAndDropped(refused, "digest_mismatch", fixture, engine, v2)

            // The controller finds it gone (HEAD 404), uploads it again, deploys again.
            try store(Self.cache(fixture), v2)
            let again = try await engine.deploy(try fixture.envelope("v2", artifact: v2), artifact: nil)
            #expect(again.phase == .succeeded, "\(again.events.map(\.message))")
            #expect(fixture.current() == "v2")
            #expect(fixture.currentMatches(v2))
        }
    }

    @Test("a cached copy cut short is refused before unpacking (size_mismatch) and dropped")
    func cutShort() async throws {
        try await withV2Cached { fixture, engine, v2 in
            #expect(truncate(fixture.layout.artifact(v2.sha256), off_t(v2.size / 3)) == 0)
            let refused = try await engine.deploy(try fixture.envelope("v2", artifact: v2), artifact: nil)
            await expectRefusedAndDropped(refused, "size_mismatch", fixture, engine, v2)
        }
    }

    // MARK: Hashed once

    /// Uploads `artifact` through the engine, as the API does.
    func upload(_ engine: DeploymentEngine, _ artifact: AgentFixture.Artifact) async throws {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: artifact.path)))
        let upload = try await engine.beginUpload(digest: artifact.sha256, size: artifact.size)
        try bytes.withUnsafeBytes { try upload.write($0) }
        try upload.finish()
    }

    static let notHashedAgain = "not hashed again"

    @Test("a copy this agent hashed as it arrived is unpacked without hashing it again; a restarted agent hashes it")
    func uploadHashedOnce() async throws {
        let fixture = try AgentFixture()
        defer { fixture.remove() }
        let v1 = try fixture.artifact("v1", extraFiles: 20)
        let v2 = try fixture.artifact("v2", extraFiles: 20)
        do {
            let engine = try fixture.engine()
            try await upload(engine, v1)
            let record = try await engine.deploy(try fixture.envelope("v1", artifact: v1), artifact: nil)
            #expect(record.phase == .succeeded, "\(record.events.map(\.message))")
            #expect(record.events.contains { $0.message.hasPrefix("unpacked") && $0.message.contains(Self.notHashedAgain) },
                    "\(record.events.map(\.message))")
            try await upload(engine, v2)
        }
        // A new agent process (as after a power loss) knows no copy: the next use hashes it.
        let restarted = try await restart(fixture)
        let record = try await restarted.deploy(try fixture.envelope("v2", artifact: v2), artifact: nil)
        #expect(record.phase == .succeeded, "\(record.events.map(\.message))")
        let unpacked = record.events.first { $0.message.hasPrefix("unpacked") }
        #expect(unpacked != nil && unpacked?.message.contains(Self.notHashedAgain) == false, "\(record.events.map(\.message))")
        #expect(fixture.currentMatches(v2))
    }

    /// A new engine on the same data directory, once the first one let go of its lock.
    func restart(_ fixture: AgentFixture) async throws -> DeploymentEngine {
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            do {
                return try fixture.engine()
            } catch let error as AgentError where error.code == .agentBusy && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    @Test("a copy changed in place after this agent hashed it is hashed again and refused (digest_mismatch)")
    func changedAfterUpload() async throws {
        let fixture = try AgentFixture()
        defer { fixture.remove() }
        let engine = try fixture.engine()
        let v1 = try fixture.artifact("v1")
        #expect(try await engine.deploy(try fixture.envelope("v1", artifact: v1), artifact: v1.path).phase == .succeeded)
        let v2 = try fixture.artifact("v2", extraFiles: 40)
        try await upload(engine, v2)
        // The file's change time comes from the kernel's coarse clock (a tick of up to 10 ms):
        // a write in the same tick as the upload's end would keep it.
        try await Task.sleep(for: .milliseconds(30))
        let handle = try #require(FileHandle(forUpdatingAtPath: fixture.layout.artifact(v2.sha256)))
        try handle.seek(toOffset: v2.size / 2)
        let byte = try #require(try handle.read(upToCount: 1)?.first)
        try handle.seek(toOffset: v2.size / 2)
        try handle.write(contentsOf: Data([byte ^ 0x5a]))
        try handle.close()
        let refused = try await engine.deploy(try fixture.envelope("v2", artifact: v2), artifact: nil)
        await expectRefusedAndDropped(refused, "digest_mismatch", fixture, engine, v2)
    }

    @Test("releaseSync: filesystem deploys the same release, made durable by one syncfs")
    func fileSystemSync() async throws {
        let fixture = try AgentFixture(extraConfig: "releaseSync: filesystem")
        defer { fixture.remove() }
        #expect(try fixture.configuration.releaseSync == .fileSystem)
        let engine = try fixture.engine()
        let v1 = try fixture.artifact("v1", extraFiles: 30)
        let record = try await engine.deploy(try fixture.envelope("v1", artifact: v1), artifact: v1.path)
        #expect(record.phase == .succeeded, "\(record.events.map(\.message))")
        #expect(fixture.current() == "v1")
        #expect(fixture.currentMatches(v1))
        let v2 = try fixture.artifact("v2", extraFiles: 10)
        try await upload(engine, v2)
        let second = try await engine.deploy(try fixture.envelope("v2", artifact: v2), artifact: nil)
        #expect(second.phase == .succeeded, "\(second.events.map(\.message))")
        #expect(fixture.currentMatches(v2))
    }
}
