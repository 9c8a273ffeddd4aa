import Glibc

/// Unpacks tar and tar.gz archives into a staging directory under a strict policy, streaming:
/// the archive is read in 256 KiB chunks and never held in memory.
///
/// Policy (checked on names after pax and GNU long names are applied; each refusal has its own
/// `ExtractionError.Code`): no absolute names, no `..`, no NUL or empty names, no duplicates,
/// limits on name length, depth, entry count and bytes; symlinks relative and resolving inside
/// the release; hard links only to earlier regular files of the archive; no devices, FIFOs or
/// other types; setuid, setgid, sticky and group/other write bits cleared, owners ignored.
/// Everything is created relative to directory descriptors (`openat` with `O_NOFOLLOW`,
/// `O_EXCL`), never by joining path strings, so nothing is written outside the staging directory.
///
/// Regular files get the archive's modification time; directories and symlinks keep the time
/// they were created. On error the staging directory holds a partial tree: remove it.
public enum ArchiveExtractor {
    /// Bytes read from the archive at a time, and the size of the decompression buffer.
    static let chunkSize = 256 << 10
    /// After the end-of-archive marker a gzip stream is still read to check its CRC, but only
    /// this much: a stream of zeros after the marker must not keep the agent busy.
    static let maxTrailingBytes: UInt64 = 1 << 20

    /// Extracts the archive at `path` into `stagingDirectory`, which must exist and be empty.
    /// Durable (`durability` not `.none`): the tree is on disk when this returns, no
    /// `syncTree` needed.
    @discardableResult
    public static func extract(
        archiveAt path: String, format: ArchiveFormat, into stagingDirectory: String,
        limits: ExtractionLimits = ExtractionLimits(), durability: TreeDurability = .none
    ) throws(ExtractionError) -> ExtractionSummary {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw ExtractionError(.ioError, "cannot open the archive \(path): \(errnoDescription(errno))")
        }
        defer { close(fd) }
        return try extract(from: fd, format: format, into: stagingDirectory, limits: limits, durability: durability)
    }

    /// Extracts the archive read from `fileDescriptor` (to its end; it is not closed) into
    /// `stagingDirectory`, which must exist and be empty.
    @discardableResult
    public static func extract(
        from fileDescriptor: Int32, format: ArchiveFormat, into stagingDirectory: String,
        limits: ExtractionLimits = ExtractionLimits(), durability: TreeDurability = .none
    ) throws(ExtractionError) -> ExtractionSummary {
        let stream = try ArchiveStream(format: format, into: stagingDirectory, limits: limits, durability: durability)
        defer { stream.close() }
        let input = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 16)
        defer { input.deallocate() }
        while stream.wantsMore {
            let count = try read(fileDescriptor, into: input)
            guard count > 0 else { break }
            try stream.consume(UnsafeRawBufferPointer(rebasing: input[0..<count]))
        }
        return try stream.finish()
    }

    /// Makes the staged tree durable: one `syncfs(2)` for the file system holding it, then an
    /// fsync of the directory itself (`TreeDurability.fileSystem` at the end of an extraction).
    /// The agent extracts with `.automatic` unless configured otherwise, which uses this only
    /// while little else is dirty, and else syncs the tree's own files and directories (a
    /// `syncfs` waits for every dirty byte of the file system, other processes' included).
    public static func syncTree(_ directory: String) throws(ExtractionError) {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw .system("open", Array(directory.utf8), errno: errno) }
        defer { close(fd) }
        try syncTree(directoryDescriptor: fd)
    }

    /// `syncTree(_:)` for an open directory descriptor.
    public static func syncTree(directoryDescriptor fd: Int32) throws(ExtractionError) {
        guard syncFileSystem(fd) == 0 else { throw .system("syncfs", nil, errno: errno) }
        guard fsync(fd) == 0 else { throw .system("fsync staging directory", nil, errno: errno) }
    }

    // MARK: - Reading

    private static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(ExtractionError) -> Int {
        while true {
            let count = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if count >= 0 { return count }
            if errno != EINTR { throw .system("read the archive", nil, errno: errno) }
        }
    }

    /// `syncfs(2)`. Glibc declares it only under `_GNU_SOURCE`, which the Swift importer does
    /// not set, so it is looked up at run time (it has been in glibc since 2.14).
    private static func syncFileSystem(_ fd: Int32) -> Int32 {
        typealias SyncFS = @convention(c) (Int32) -> Int32
        let handle = dlopen(nil, RTLD_NOW)
        defer { if let handle { dlclose(handle) } }
        guard let handle, let symbol = dlsym(handle, "syncfs") else {
            // Without syncfs, sync(2) gives the same guarantee on Linux, for every file system.
            sync()
            return 0
        }
        return unsafeBitCast(symbol, to: SyncFS.self)(fd)
    }
}
