import Glibc

/// Starting the kernel's writeback of a file early, so that the fsync that must come
/// before the file is trusted finds its data already on its way to the disk.
public enum WriteBack {
    /// `sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE)`: queues the dirty pages of the
    /// whole file for writing and returns without waiting. A hint only: it makes nothing
    /// durable (no metadata, no disk cache flush), so an fsync must still follow; where the
    /// call is missing or fails, that fsync simply does all the work.
    public static func start(_ fd: Int32) {
        guard let syncFileRange else { return }
        _ = syncFileRange(fd, 0, 0, syncFileRangeWrite)
    }

    /// The same for `length` bytes from `offset` (length 0: to the end of the file), for a
    /// file still being written: what was written so far goes to the disk while the rest
    /// arrives, instead of all of it at the next flush.
    public static func start(_ fd: Int32, offset: Int64, length: Int64) {
        guard let syncFileRange else { return }
        _ = syncFileRange(fd, offset, length, syncFileRangeWrite)
    }

    /// For a file that will not be read again soon (an artifact's cached copy once its
    /// deployment ended): waits until its data was written to the device, then asks the
    /// kernel to drop its pages from the page cache (`POSIX_FADV_DONTNEED` drops only
    /// clean pages, hence the wait), so that they make room for what the host's
    /// applications read. Not durability (neither the device's cache nor the metadata is
    /// flushed) and not needed for correctness: where a call fails, the pages stay cached
    /// until the kernel reclaims them. On tmpfs both calls do nothing: there the pages
    /// are the file.
    public static func dropFromPageCache(_ fd: Int32) {
        if let syncFileRange { _ = syncFileRange(fd, 0, 0, syncFileRangeWaitBefore | syncFileRangeWrite | syncFileRangeWaitAfter) }
        _ = posix_fadvise(fd, 0, 0, fadvDontNeed)
    }

    /// `SYNC_FILE_RANGE_WAIT_BEFORE`, `SYNC_FILE_RANGE_WRITE`, `SYNC_FILE_RANGE_WAIT_AFTER`.
    private static let syncFileRangeWaitBefore: UInt32 = 1
    private static let syncFileRangeWrite: UInt32 = 2
    private static let syncFileRangeWaitAfter: UInt32 = 4
    /// `POSIX_FADV_DONTNEED` on Linux.
    private static let fadvDontNeed: Int32 = 4

    private typealias SyncFileRange = @convention(c) (Int32, Int64, Int64, UInt32) -> Int32

    /// Glibc declares `sync_file_range` only under `_GNU_SOURCE`, which the Swift importer
    /// does not set, so it is looked up once at run time (glibc has it since 2.6).
    private static let syncFileRange: SyncFileRange? = {
        guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, "sync_file_range") else { return nil }
        return unsafeBitCast(symbol, to: SyncFileRange.self)
    }()
}
