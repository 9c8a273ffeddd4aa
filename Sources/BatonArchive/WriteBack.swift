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

    /// `SYNC_FILE_RANGE_WRITE`.
    private static let syncFileRangeWrite: UInt32 = 2

    private typealias SyncFileRange = @convention(c) (Int32, Int64, Int64, UInt32) -> Int32

    /// Glibc declares `sync_file_range` only under `_GNU_SOURCE`, which the Swift importer
    /// does not set, so it is looked up once at run time (glibc has it since 2.6).
    private static let syncFileRange: SyncFileRange? = {
        guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, "sync_file_range") else { return nil }
        return unsafeBitCast(symbol, to: SyncFileRange.self)
    }()
}
