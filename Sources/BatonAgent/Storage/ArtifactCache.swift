import BatonArchive
import BatonProtocol
import Crypto
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Content-addressed artifacts: `artifacts/sha256/<digest>`. A file appears under its
/// digest only after every byte was hashed and both digest and size matched; until
/// then it is a temporary file under `artifacts/tmp`, removed on any failure.
///
/// Not fsynced: a cached copy is a copy of bytes the controller or the URL still has, and
/// every deployment hashes it again in the read that unpacks it (`LocalArtifactIntake`),
/// so a copy a power loss tore or truncated is refused and dropped, never unpacked. Syncing
/// it cost a deployment its whole size in disk writes on the critical path (docs/durability.md).
///
/// Consumed by its unpack: once a deployment has read a copy to its end and its digest
/// matched, the copy is removed (`consume`) before the tree is synced, unless another
/// deployment in flight has claimed it. The release tree holds the same content, a later
/// deployment of that release reuses the tree, and a copy removed before the kernel wrote
/// it back never reaches the disk: a deployment writes its artifact's bytes once, as a tree.
struct ArtifactCache: Sendable {
    let layout: DataLayout
    /// Total bytes kept before least-recently-used eviction.
    let capacity: UInt64
    /// The copies hashed since this cache was opened: a deployment skips hashing those again.
    let verified = VerifiedCopies()
    /// The deployments between their fetch step and the unpack that reads their copy.
    let claims = CopyClaims()

    func contains(_ digest: String) -> Bool {
        Digest.isSHA256Hex(digest) && DurableFiles.exists(layout.artifact(digest))
    }

    /// Claims the cached copy of `digest` for deployment `id` until its unpack has read
    /// it (`consume`) or it ends (`unclaim`). False when there is no copy.
    func claim(_ digest: String, by id: String) -> Bool {
        claims.claim(digest, by: id) { contains(digest) }
    }

    /// Deployment `id` has read the copy to its end and found its digest: the copy is
    /// removed unless another deployment in flight claimed it too. The caller must have
    /// closed its descriptor first: the pages of a file still open are written back by a
    /// `syncfs`, those of a closed and unlinked one are dropped unwritten.
    func consume(_ digest: String, by id: String) {
        claims.release(digest, by: id) {
            verified.forget(digest)
            unlink(layout.artifact(digest))
        }
    }

    /// Drops deployment `id`'s claim on `digest` without removing the copy (a deployment
    /// that ended before its unpack read it).
    func unclaim(_ digest: String, by id: String) {
        claims.release(digest, by: id)
    }

    /// Marks an artifact as just used (eviction is least-recently-used by mtime).
    func touch(_ digest: String) {
        // UTIME_NOW, a C macro Swift does not import: ((1 << 30) - 1).
        let utimeNow = (1 << 30) - 1
        var times = [timespec(tv_sec: 0, tv_nsec: utimeNow), timespec(tv_sec: 0, tv_nsec: utimeNow)]
        let path = layout.artifact(digest)
        // The agent's own change of the times does not make a verified copy unverified; a
        // copy that changed since it was hashed stays unverified.
        var st = stat()
        let wasVerified = stat(path, &st) == 0 && verified.isVerified(digest, st)
        utimensat(AT_FDCWD, path, &times, 0)
        if wasVerified { verified.renew(digest, path: path, before: VerifiedCopies.Identity(st)) } else { verified.forget(digest) }
    }

    /// Starts receiving an artifact that must hash to `digest` and be exactly `size` bytes.
    func beginWrite(digest: String, size: UInt64) throws(AgentError) -> ArtifactWriter {
        try ArtifactWriter(cache: self, digest: digest, size: size)
    }

    /// Copies a local file into the cache. The copy is hashed, not the source, so what is
    /// kept is exactly what was checked. (`batond apply` reads its file once instead, with
    /// `LocalArtifactIntake`; this is for a deployment that finds the release it was to
    /// reuse gone before its fetch step.)
    func ingest(file path: String, digest: String, size: UInt64) throws(AgentError) {
        if contains(digest) {
            touch(digest)
            return
        }
        let source = open(path, O_RDONLY | O_CLOEXEC)
        guard source >= 0 else {
            throw AgentError(.artifactUnavailable, "cannot open artifact \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(source) }
        let writer = try beginWrite(digest: digest, size: size)
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress!, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                writer.abort()
                throw AgentError.io("read \(path)")
            }
            if n == 0 { break }
            do {
                try buffer.withUnsafeBytes { try writer.write(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            } catch let error as AgentError {
                writer.abort()
                throw error
            } catch {
                writer.abort()
                throw AgentError(.ioError, "\(error)")
            }
        }
        try writer.finish()
    }

    /// Evicts least-recently-used artifacts until the cache fits its capacity. Never
    /// evicts one in `protected` (what retained releases came from).
    func evict(protecting protected: Set<String>) {
        let entries = storedArtifacts()
        var total = entries.reduce(0) { $0 + $1.size }
        let protected = protected.union(claims.claimed)
        for entry in entries.sorted(by: { $0.used < $1.used }) where total > capacity {
            if protected.contains(entry.digest) { continue }
            verified.forget(entry.digest)
            if unlink(layout.artifact(entry.digest)) == 0 { total -= entry.size }
        }
    }

    /// Makes room for `size` more bytes while `reserved` bytes of other uploads are on
    /// their way: evicts least-recently-used artifacts not in `protected` until
    /// everything fits the capacity. Evicts nothing and returns false when even that
    /// would not be enough, so a refused upload costs the cache nothing.
    func makeRoom(for size: UInt64, reserved: UInt64, protecting protected: Set<String>) -> Bool {
        let entries = storedArtifacts()
        var total = entries.reduce(0) { $0 + $1.size } + reserved + size
        guard total > capacity else { return true }
        let protected = protected.union(claims.claimed)
        let evictable = entries.filter { !protected.contains($0.digest) }.sorted { $0.used < $1.used }
        guard total - evictable.reduce(0, { $0 + $1.size }) <= capacity else { return false }
        for entry in evictable where total > capacity {
            verified.forget(entry.digest)
            if unlink(layout.artifact(entry.digest)) == 0 { total -= entry.size }
        }
        return total <= capacity
    }

    /// The artifacts kept, with their sizes and when each was last used.
    private func storedArtifacts() -> [(digest: String, size: UInt64, used: Int)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: layout.artifactsDirectory)) ?? []
        var entries: [(digest: String, size: UInt64, used: Int)] = []
        for name in names where Digest.isSHA256Hex(name) {
            var st = stat()
            guard lstat(layout.artifact(name), &st) == 0 else { continue }
            // Nanoseconds: uploads a moment apart must keep their order.
            entries.append((name, UInt64(st.st_size), st.st_mtim.tv_sec * 1_000_000_000 + st.st_mtim.tv_nsec))
        }
        return entries
    }

    /// Uploads that never finished (a crash or a dropped connection) leave temporary files.
    func removeTemporaryFiles() {
        DurableFiles.removeTree(layout.artifactsTemporaryDirectory)
        try? DurableFiles.makeDirectory(layout.artifactsTemporaryDirectory)
    }
}

/// One artifact being received: hashed as it is written, size enforced on every write.
/// Used by one writer at a time.
final class ArtifactWriter: @unchecked Sendable {
    let cache: ArtifactCache
    let digest: String
    let size: UInt64
    let temporaryPath: String
    private let fd: Int32
    private var hasher = SHA256()
    private(set) var written: UInt64 = 0
    private var closed = false
    private var verified = false
    /// What the bytes written hash to, once `verify` ran.
    private(set) var actualDigest: String?

    init(cache: ArtifactCache, digest: String, size: UInt64) throws(AgentError) {
        guard Digest.isSHA256Hex(digest) else {
            throw AgentError(.digestMismatch, "'\(digest)' is not a lowercase hex SHA-256 digest")
        }
        self.cache = cache
        self.digest = digest
        self.size = size
        temporaryPath = "\(cache.layout.artifactsTemporaryDirectory)/\(digest).\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
        fd = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, DurableFiles.privateFileMode)
        guard fd >= 0 else { throw AgentError.io("create \(temporaryPath)") }
        guard fchmod(fd, DurableFiles.privateFileMode) == 0 else {
            let e = errno
            close(fd)
            unlink(temporaryPath)
            throw AgentError.io("set the mode of \(temporaryPath)", errno: e)
        }
    }

    /// Appends bytes. More bytes than declared stop the upload at once.
    func write(_ bytes: UnsafeRawBufferPointer) throws(AgentError) {
        guard written + UInt64(bytes.count) <= size else {
            abort()
            throw AgentError(
                .sizeMismatch, "the artifact is larger than the \(size) bytes its manifest declares; nothing was kept")
        }
        hasher.update(bufferPointer: bytes)
        guard DurableFiles.writeAll(fd, bytes) else {
            let e = errno
            abort()
            throw AgentError.io("write artifact", errno: e)
        }
        written += UInt64(bytes.count)
    }

    /// Drops every byte received so far and starts again from byte 0: a server asked to
    /// resume that sent the whole artifact again, or could not serve the range asked for.
    func restart() throws(AgentError) {
        guard !closed else { throw AgentError(.ioError, "the artifact write already ended") }
        guard ftruncate(fd, 0) == 0, lseek(fd, 0, SEEK_SET) == 0 else {
            let e = errno
            abort()
            throw AgentError.io("truncate artifact", errno: e)
        }
        hasher = SHA256()
        written = 0
        verified = false
    }

    /// Checks size and digest, makes the file visible under its digest.
    func finish() throws(AgentError) {
        try verify()
        try commit()
    }

    /// Checks size and digest; on a mismatch drops the file, so nothing is ever kept under
    /// a digest it does not have.
    func verify() throws(AgentError) {
        guard written == size else {
            abort()
            throw AgentError(.sizeMismatch, "received \(written) bytes but the manifest declares \(size); nothing was kept")
        }
        let actual = Digest.hex(hasher.finalize())
        actualDigest = actual
        guard actual == digest else {
            abort()
            throw AgentError(.digestMismatch, "the artifact hashes to \(actual), not \(digest); nothing was kept")
        }
        verified = true
    }

    /// Makes a verified file visible under its digest. Neither it nor its name is fsynced
    /// (see `ArtifactCache`): after a power loss it may be gone, or torn, which the next
    /// deployment's hash finds. Nor is its writeback started: the deployment that unpacks
    /// it removes it, as a rule within seconds, and pages dropped before the kernel's own
    /// writeback came to them were never written (a `syncfs` of `releaseSync` runs after
    /// the removal).
    func commit() throws(AgentError) {
        guard verified, !closed else { throw AgentError(.ioError, "internal: the artifact was not verified before it was kept") }
        defer {
            close(fd)
            closed = true
        }
        guard rename(temporaryPath, cache.layout.artifact(digest)) == 0 else {
            let e = errno
            unlink(temporaryPath)
            throw AgentError.io("store artifact", errno: e)
        }
        // After the rename, which changes the file's change time.
        cache.verified.record(digest, fd: fd)
    }

    /// Drops what was received.
    func abort() {
        if !closed {
            close(fd)
            closed = true
        }
        unlink(temporaryPath)
    }

    deinit {
        if !closed {
            close(fd)
            unlink(temporaryPath)
        }
    }
}
