@testable import BatonAgent
@testable import BatonArchive
import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

/// An artifact's cached copy leaves the page cache once its deployment ended
/// (`ArtifactCache.releasePages`): the tree was unpacked from it, and left in memory every
/// artifact a host received would crowd its applications' pages. The copy itself stays
/// on disk, whole, for the next deployment of it.
@Suite struct CachedCopyPagesTests {
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

    /// How many of the file's pages are in the page cache (`mincore` over a mapping of it).
    static func residentPages(_ path: String) throws -> (resident: Int, total: Int) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw TestSupportError("open \(path): \(errno)") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_size > 0 else { throw TestSupportError("stat \(path)") }
        let size = Int(st.st_size)
        guard let map = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), map != MAP_FAILED else {
            throw TestSupportError("mmap \(path): \(errno)")
        }
        defer { munmap(map, size) }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        var vector = [UInt8](repeating: 0, count: (size + page - 1) / page)
        guard mincore(map, size, &vector) == 0 else { throw TestSupportError("mincore: \(errno)") }
        return (vector.reduce(0) { $0 + Int($1 & 1) }, vector.count)
    }

    /// True where the data directory's file system keeps files in memory (tmpfs): there
    /// the pages are the file and cannot leave.
    static func inMemory(_ path: String) -> Bool {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return TreeDurability.fileSystemType(fd).map(TreeDurability.memoryFileSystems.contains) ?? false
    }

    @Test("an uploaded copy and an applied one are out of the page cache after their deployments, and still whole")
    func copiesLeaveThePageCache() async throws {
        let fixture = try AgentFixture()
        defer { fixture.remove() }
        let engine = try fixture.engine()
        let memory = Self.inMemory(fixture.layout.root)

        // `batond apply --artifact FILE`: the copy is written in the read that unpacks it.
        let v1 = try bigArtifact(fixture, "v1", megabytes: 4)
        let first = try await engine.deploy(try fixture.envelope("v1", artifact: v1), artifact: v1.path)
        #expect(first.phase == .succeeded, "\(first.events.map(\.message))")

        // An upload, then its deployment (what a rollout does).
        let v2 = try bigArtifact(fixture, "v2", megabytes: 4)
        let cache = ArtifactCache(layout: fixture.layout, capacity: 1 << 30)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: v2.path)))
        let writer = try cache.beginWrite(digest: v2.sha256, size: v2.size)
        for start in stride(from: 0, to: bytes.count, by: 64 << 10) {  // in pieces, as a body arrives
            try bytes[start..<min(start + (64 << 10), bytes.count)].withUnsafeBytes { try writer.write($0) }
        }
        try writer.finish()
        let uploaded = try Self.residentPages(fixture.layout.artifact(v2.sha256))
        #expect(uploaded.resident == uploaded.total, "just written, the upload is in the page cache: \(uploaded)")
        let second = try await engine.deploy(try fixture.envelope("v2", artifact: v2), artifact: nil)
        #expect(second.phase == .succeeded, "\(second.events.map(\.message))")
        #expect(fixture.current() == "v2")

        for artifact in [v1, v2] {
            let path = fixture.layout.artifact(artifact.sha256)
            let pages = try Self.residentPages(path)
            if memory {
                #expect(pages.resident == pages.total, "on tmpfs the pages are the file: \(pages)")
            } else {
                // Pages the kernel could not drop (one still being written back, one mapped
                // by someone) may stay; without the release every page is still resident.
                #expect(pages.resident * 10 < pages.total, "\(artifact.sha256.prefix(12)): \(pages) pages resident after the deployment")
            }
            // Nothing of the copy was lost: it still hashes to its digest.
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            #expect(Digest.sha256Hex(data) == artifact.sha256)
        }
    }
}
