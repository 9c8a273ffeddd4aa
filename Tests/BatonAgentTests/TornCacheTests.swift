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
}
