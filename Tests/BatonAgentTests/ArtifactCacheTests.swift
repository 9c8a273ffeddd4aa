@testable import BatonAgent
import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

@Suite struct ArtifactCacheTests {
    func withCache(capacity: UInt64 = 1 << 30, _ body: (ArtifactCache) throws -> Void) throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let layout = DataLayout(root: dir.path)
        try layout.create()
        try body(ArtifactCache(layout: layout, capacity: capacity))
    }

    func store(_ cache: ArtifactCache, _ bytes: [UInt8], digest: String? = nil, size: UInt64? = nil) throws {
        let writer = try cache.beginWrite(digest: digest ?? Digest.sha256Hex(bytes), size: size ?? UInt64(bytes.count))
        // Two chunks, as a network upload would deliver them.
        let half = bytes.count / 2
        try bytes[..<half].withUnsafeBytes { try writer.write($0) }
        try bytes[half...].withUnsafeBytes { try writer.write($0) }
        try writer.finish()
    }

    func temporaryFiles(_ cache: ArtifactCache) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: cache.layout.artifactsTemporaryDirectory)) ?? []
    }

    @Test func storedUnderItsDigestOnlyWhenDigestAndSizeMatch() throws {
        try withCache { cache in
            let bytes = Array("hello artifact".utf8)
            try store(cache, bytes)
            #expect(cache.contains(Digest.sha256Hex(bytes)))
            #expect(temporaryFiles(cache).isEmpty)
        }
    }

    @Test func aStoredCopyIsOwnerOnly() throws {
        try withCache { cache in
            let bytes = Array("private bytes".utf8)
            try store(cache, bytes)
            var st = stat()
            #expect(stat(cache.layout.artifact(Digest.sha256Hex(bytes)), &st) == 0)
            #expect(st.st_mode & 0o7777 == 0o600)
        }
    }

    @Test("a consumed copy is removed only when no other deployment in flight claimed it")
    func consumingRespectsOtherClaims() throws {
        try withCache { cache in
            let bytes = Array("shared by two apps".utf8)
            let digest = Digest.sha256Hex(bytes)
            #expect(!cache.claim(digest, by: "web-1"), "no copy, no claim")
            try store(cache, bytes)
            #expect(cache.claim(digest, by: "web-1"))
            #expect(cache.claim(digest, by: "api-1"))
            cache.consume(digest, by: "web-1")
            #expect(cache.contains(digest), "api-1 still needs it")
            cache.consume(digest, by: "api-1")
            #expect(!cache.contains(digest), "the last reader removes it")
            #expect(!cache.claim(digest, by: "db-1"))
        }
    }

    @Test func aClaimedCopyIsNeverEvicted() throws {
        try withCache(capacity: 1) { cache in
            let bytes = Array("claimed, waiting for its unpack".utf8)
            let digest = Digest.sha256Hex(bytes)
            try store(cache, bytes)
            #expect(cache.claim(digest, by: "web-3"))
            cache.evict(protecting: [])
            #expect(!cache.makeRoom(for: 10, reserved: 0, protecting: []))
            #expect(cache.contains(digest))
            cache.unclaim(digest, by: "web-3")
            cache.evict(protecting: [])
            #expect(!cache.contains(digest), "over capacity and unclaimed: evicted")
        }
    }

    @Test func anUnclaimedCopyStaysForTheCache() throws {
        try withCache { cache in
            let bytes = Array("deployment ended before its unpack".utf8)
            let digest = Digest.sha256Hex(bytes)
            try store(cache, bytes)
            #expect(cache.claim(digest, by: "web-2"))
            cache.unclaim(digest, by: "web-2")
            #expect(cache.contains(digest))
            #expect(cache.claims.claimed.isEmpty)
        }
    }

    @Test func aDigestMismatchKeepsNothing() throws {
        try withCache { cache in
            let wrong = Digest.sha256Hex(Array("other".utf8))
            #expect(throws: AgentError.self) { try store(cache, Array("hello".utf8), digest: wrong) }
            #expect(!cache.contains(wrong))
            #expect(temporaryFiles(cache).isEmpty)
        }
    }

    @Test func moreBytesThanDeclaredStopAtOnce() throws {
        try withCache { cache in
            let bytes = Array(repeating: UInt8(7), count: 1000)
            let writer = try cache.beginWrite(digest: Digest.sha256Hex(bytes), size: 10)
            do {
                try bytes.withUnsafeBytes { try writer.write($0) }
                Issue.record("an overrun was accepted")
            } catch {
                #expect((error as? AgentError)?.code == .sizeMismatch)
            }
            #expect(temporaryFiles(cache).isEmpty)
            // Fewer bytes than declared are refused at the end.
            do {
                try store(cache, Array(bytes[..<5]), digest: Digest.sha256Hex(bytes[..<5]), size: 10)
                Issue.record("a short artifact was accepted")
            } catch {
                #expect((error as? AgentError)?.code == .sizeMismatch)
            }
        }
    }

    @Test func leastRecentlyUsedEvictionNeverTakesWhatIsProtected() throws {
        try withCache(capacity: 2500) { cache in
            var digests: [String] = []
            for i in 0..<4 {
                let bytes = Array(repeating: UInt8(i), count: 1000)
                try store(cache, bytes)
                let digest = Digest.sha256Hex(bytes)
                // Distinct use times: oldest first.
                var times = [timespec(tv_sec: 1_000_000 + i * 10, tv_nsec: 0), timespec(tv_sec: 1_000_000 + i * 10, tv_nsec: 0)]
                utimensat(AT_FDCWD, cache.layout.artifact(digest), &times, 0)
                digests.append(digest)
            }
            cache.evict(protecting: [digests[0]])
            // 4,000 bytes over a 2,500 capacity: the two least recently used unprotected go.
            #expect(cache.contains(digests[0]))
            #expect(!cache.contains(digests[1]))
            #expect(!cache.contains(digests[2]))
            #expect(cache.contains(digests[3]))
        }
    }
}
