import Glibc

/// An extraction fed by the caller, chunk by chunk, instead of read from a descriptor: lets
/// one read of an artifact feed a hasher, a cache file and the extractor alike. The policy
/// is the same as `ArchiveExtractor.extract`, which is built on it; only where the bytes
/// come from differs.
///
/// After an error the stream is finished: further chunks are ignored, and the staging
/// directory holds a partial tree to remove.
public final class ArchiveStream {
    private let session: ExtractionSession
    private let gzip: GzipDecompressor?
    private let output: UnsafeMutableRawBufferPointer?
    /// True once nothing more is wanted: the tar end was read (plain tar), or more than
    /// `ArchiveExtractor.maxTrailingBytes` followed it (gzip, whose CRC is then not checked,
    /// as `tar` does not either).
    private var done = false
    private var closed = false

    /// Starts extracting into `stagingDirectory`, which must exist and be empty. Durable
    /// (`.eachFile`, `.fileSystem` or `.automatic`): every file and directory is on disk when `finish()`
    /// returns (see `ExtractionSession`).
    public convenience init(
        format: ArchiveFormat, into stagingDirectory: String, limits: ExtractionLimits = ExtractionLimits(),
        durability: TreeDurability = .none
    ) throws(ExtractionError) {
        try self.init(format: format, into: stagingDirectory, limits: limits, durability: durability, dirtyPageCache: nil)
    }

    /// `dirtyPageCache` and `writtenBack` tell `.automatic` how much is dirty and how much
    /// the machine has written back (tests choose).
    init(
        format: ArchiveFormat, into stagingDirectory: String, limits: ExtractionLimits,
        durability: TreeDurability, dirtyPageCache: (() -> UInt64?)?,
        writtenBack: @escaping () -> UInt64? = TreeDurability.writtenBackBytes
    ) throws(ExtractionError) {
        session = try ExtractionSession(
            stagingDirectory: stagingDirectory, limits: limits, durability: durability, dirtyPageCache: dirtyPageCache,
            writtenBack: writtenBack)
        switch format {
        case .tar:
            gzip = nil
            output = nil
        case .tarGz:
            do {
                gzip = try GzipDecompressor()
            } catch {
                session.close()
                throw error
            }
            output = UnsafeMutableRawBufferPointer.allocate(byteCount: ArchiveExtractor.chunkSize, alignment: 16)
        }
    }

    deinit { close() }

    /// False once the rest of the archive no longer matters (see `done`): a reader may stop.
    public var wantsMore: Bool { !done && !closed }

    /// Takes the next bytes of the archive, of any length.
    public func consume(_ chunk: UnsafeRawBufferPointer) throws(ExtractionError) {
        guard !done, !closed, !chunk.isEmpty else { return }
        do {
            try feed(chunk)
        } catch {
            done = true
            throw error
        }
    }

    private func feed(_ chunk: UnsafeRawBufferPointer) throws(ExtractionError) {
        guard let gzip, let output else {
            // Plain tar stops at the end-of-archive marker, as tar(1) does; record padding is not read.
            try session.consume(chunk)
            if session.isAtEnd { done = true }
            return
        }
        var used = 0
        var produced = 0
        repeat {
            let result = try gzip.decompress(UnsafeRawBufferPointer(rebasing: chunk[used...]), into: output)
            used += result.consumed
            produced = result.produced
            if produced > 0 { try session.consume(UnsafeRawBufferPointer(rebasing: output[0..<produced])) }
            if session.trailingBytes > ArchiveExtractor.maxTrailingBytes {
                done = true
                return
            }
        } while used < chunk.count || produced == output.count
    }

    /// Checks the archive ended properly (and, when durable, syncs the tree), then closes
    /// every descriptor.
    public func finish() throws(ExtractionError) -> ExtractionSummary {
        defer { close() }
        if let gzip, !done { try gzip.finish() }
        try session.finish()
        return session.summary
    }

    /// Closes every descriptor without syncing. Safe to call more than once.
    public func close() {
        guard !closed else { return }
        closed = true
        session.close()
        output?.deallocate()
    }
}
