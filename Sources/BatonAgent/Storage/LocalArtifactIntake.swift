import BatonArchive
import BatonProtocol
import Crypto
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An artifact in one read of its file: each chunk goes to the SHA-256 hasher and to the
/// streaming extractor. Nothing is handed to the deployment until every byte was read and
/// digest and size matched; a wrong file leaves nothing behind. Two callers:
///
/// * `batond apply --artifact FILE`, before the serial is consumed (a wrong file must not
///   burn a signed envelope that is fine with the right one), unpacking under
///   `artifacts/tmp`. No copy goes to the cache: the tree is what the host keeps, and the
///   operator's file is still there should the tree have to be unpacked again;
/// * the unpack step of every other deployment, reading the cache's own copy into the
///   staging directory: the cached copy is not fsynced when it is stored (`ArtifactWriter`),
///   so it is hashed again in the read that unpacks it, and a copy a power loss tore is
///   refused (`digest_mismatch`) instead of unpacked. Unless this agent hashed that very
///   file since it started (`VerifiedCopies`: a torn copy needs a crash, which would have
///   emptied that record), the usual case of an upload followed by its deployment: then
///   the bytes are hashed once, as they arrive. Once read and found to be the artifact, the
///   copy is consumed (`ArtifactCache.consume`), before the tree is synced.
///
/// The extractor's verdict does not decide whether the file is the artifact: a refused
/// archive is still hashed to its end, and the deployment then fails in its unpack step
/// with the extractor's code.
enum LocalArtifactIntake {
    /// Where and how to unpack; nil when the release is already installed.
    struct Unpack: Sendable {
        let directory: String
        let format: ArchiveFormat
        let limits: ExtractionLimits
        /// How the tree is made durable before it is handed over (`releaseSync:`).
        let durability: TreeDurability
    }

    /// A verified artifact's unpacked tree: on disk (files and directories fsynced) when
    /// the extractor accepted the archive; already removed when it refused it.
    struct Staged: Sendable {
        let directory: String
        let result: Result<ExtractionSummary, ExtractionError>
        /// False when the file was the cache's copy this agent had hashed already, and
        /// was not hashed again.
        let hashed: Bool
    }

    /// Bytes read from the file at a time.
    static let chunkSize = 1 << 20

    /// Reads `path` once. Returns the staged tree (nil without `unpack`). Throws
    /// `artifact_unavailable`, `size_mismatch` or `digest_mismatch` for a file that is not
    /// the artifact, after removing everything it wrote.
    /// `retry`: what the operator is told to do about a file that is not the artifact.
    /// `consume`: run once the file was read to its end and is the artifact, after it was
    /// closed and before the tree is synced (the unpack step removes the cached copy there).
    static func run(
        file path: String, artifact: ArtifactReference, cache: ArtifactCache, unpack: Unpack?,
        retry: String = "nothing was recorded and the serial is still unused: rerun with the artifact this envelope was signed for",
        consume: (() -> Void)? = nil
    ) throws(AgentError) -> Staged? {
        do {
            return try read(path, artifact, cache, unpack, retry, consume)
        } catch {
            if let unpack { DurableFiles.removeTree(unpack.directory) }
            throw error
        }
    }

    private static func read(
        _ path: String, _ artifact: ArtifactReference, _ cache: ArtifactCache, _ unpack: Unpack?, _ retry: String,
        _ consume: (() -> Void)?
    ) throws(AgentError) -> Staged? {
        let source = open(path, O_RDONLY | O_CLOEXEC)
        guard source >= 0 else {
            throw AgentError(.artifactUnavailable, "cannot open artifact \(path): \(String(cString: strerror(errno)))")
        }
        var sourceOpen = true
        defer { if sourceOpen { close(source) } }
        var st = stat()
        guard fstat(source, &st) == 0 else { throw AgentError.io("stat \(path)") }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw AgentError(.artifactUnavailable, "artifact \(path) is not a regular file")
        }
        // The size first, from `stat`: an obviously wrong file is refused without reading it.
        guard UInt64(st.st_size) == artifact.size else {
            throw AgentError(
                .sizeMismatch,
                "\(path) is \(st.st_size) bytes, but the manifest names \(artifact.size) bytes (sha256:\(artifact.sha256)); \(retry)")
        }

        // The cache's own copy, hashed by this agent since it started and unchanged since, is
        // not hashed again.
        let isCachedCopy = path == cache.layout.artifact(artifact.sha256)
        let alreadyVerified = isCachedCopy && cache.verified.isVerified(artifact.sha256, st)
        var hasher: SHA256? = alreadyVerified ? nil : SHA256()
        var stream: ArchiveStream?
        var refusal: ExtractionError?
        if let unpack {
            DurableFiles.removeTree(unpack.directory)
            try DurableFiles.makeDirectory(unpack.directory, mode: DataLayout.releaseDirectoryMode)
            do {
                stream = try ArchiveStream(format: unpack.format, into: unpack.directory, limits: unpack.limits, durability: unpack.durability)
            } catch {
                refusal = error
            }
        }
        defer { stream?.close() }

        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 16)
        defer { buffer.deallocate() }
        var total: UInt64 = 0
        while true {
            let n = Glibc.read(source, buffer.baseAddress, buffer.count)
            if n < 0 {
                if errno == EINTR { continue }
                throw AgentError.io("read \(path)")
            }
            if n == 0 { break }
            let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
            total += UInt64(n)
            guard total <= artifact.size else {
                throw AgentError(.sizeMismatch, "\(path) grew past the manifest's \(artifact.size) bytes while it was read; \(retry)")
            }
            hasher?.update(bufferPointer: chunk)
            if let current = stream, refusal == nil, current.wantsMore {
                do {
                    try current.consume(chunk)
                } catch {
                    refusal = error
                    current.close()
                    // A partial tree is of no use, and it may be what filled the disk.
                    DurableFiles.removeTree(unpack!.directory)
                }
            }
        }
        guard total == artifact.size else {
            throw AgentError(.sizeMismatch, "\(path) shrank to \(total) bytes while it was read, but the manifest names \(artifact.size); \(retry)")
        }
        let actual: String?
        if let hasher {
            let digest = Digest.hex(hasher.finalize())
            actual = digest == artifact.sha256 ? nil : digest
            if actual == nil, isCachedCopy { cache.verified.record(artifact.sha256, fd: source) }
        } else {
            actual = nil
        }
        if let actual {
            throw AgentError(
                .digestMismatch, "\(path) hashes to sha256:\(actual), but the manifest names sha256:\(artifact.sha256); \(retry)")
        }

        if let consume {
            sourceOpen = false
            close(source)
            consume()
        } else if isCachedCopy {
            cache.touch(artifact.sha256)
        }
        var result: Result<ExtractionSummary, ExtractionError>?
        if let refusal {
            result = .failure(refusal)
        } else if let stream {
            do {
                result = .success(try stream.finish())
            } catch {
                result = .failure(error)
                DurableFiles.removeTree(unpack!.directory)
            }
        }
        guard let unpack, let result else { return nil }
        return Staged(directory: unpack.directory, result: result, hashed: !alreadyVerified)
    }
}
