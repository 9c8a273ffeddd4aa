#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// How an extraction makes its tree durable before it reports success. Both durable
/// modes give the same guarantee: when `finish()` returns, every file (data, mode, mtime)
/// and every directory of the tree is on disk, so a power loss after that cannot leave
/// the release the agent then switches to torn. They differ in what else is flushed and
/// in what that costs.
public enum TreeDurability: String, Sendable, CaseIterable {
    /// Nothing is synced: the caller syncs, or does not need the tree to survive a crash.
    case none
    /// Each file and directory of the tree is fsynced, and nothing else: the files in
    /// batches in the background while the next ones are written (`FileSyncer`), the
    /// directories at the end. Narrow: another process's dirty data is not waited for.
    case eachFile = "files"
    /// Nothing is synced while the tree is written; at the end one `syncfs(2)` for the file
    /// system that holds it, then an fsync of its root. One journal commit and one disk
    /// cache flush instead of one per file, but it also waits for every other dirty byte
    /// of that file system (an application's data included). For hosts whose release
    /// file system holds little else, or many agents on one disk.
    case fileSystem = "filesystem"
    /// One `syncfs(2)` when it waits for little besides the tree, each file otherwise (the
    /// default). A `syncfs` costs one journal commit and one flush where each file costs
    /// its own; what it may cost beyond the tree is the other dirty data of the file system.
    /// So: unless the machine's dirty page cache (`/proc/meminfo`: Dirty and Writeback, less
    /// what other ext4 file systems hold in delayed allocation: an upper bound of this file
    /// system's, `dirtyPageCacheBytes(forDirectory:)`) is over `deferCeiling` as the
    /// extraction starts, the files are not fsynced as they are written (only their
    /// writeback is started, in batches, when more than `syncfsAllowance` was dirty); at
    /// the end, if the dirty page cache is at most the tree's bytes plus the allowance
    /// (`allowance(writtenBack:seconds:)`: what the machine writes back in
    /// `syncfsWaitBudget` at the rate it did during the extraction, and never less than
    /// `syncfsAllowance`), one `syncfs` and an fsync of the root make the tree durable;
    /// otherwise, at the start or at the end, each file and directory is fsynced as in
    /// `.eachFile`.
    case automatic = "auto"
}

extension TreeDurability {
    /// What is worth doing for a tree under the directory open as `fd`: nothing on a file
    /// system that lives in memory (tmpfs, ramfs), where no file survives a power loss,
    /// so there is nothing to make durable and every fsync is only a system call (and a
    /// `syncfs` a walk over every inode of it); `self` everywhere else, and where the file
    /// system cannot be told.
    public func effective(forDirectory fd: Int32) -> TreeDurability {
        guard self != .none, let type = Self.fileSystemType(fd) else { return self }
        return Self.memoryFileSystems.contains(type) ? .none : self
    }

    /// `fstatfs(2)`'s `f_type` for the file open as `fd`.
    static func fileSystemType(_ fd: Int32) -> Int64? { FileSystemStatus.of(descriptor: fd)?.type }

    /// Other dirty data an `.automatic` tree's `syncfs` may always wait for: 32 MiB, a
    /// fraction of a second on any disk, and about what the per-file fsyncs of a 2,000-file
    /// tree cost beyond one `syncfs` in CPU time (docs/durability.md, "Batches").
    public static let syncfsAllowance: UInt64 = 32 << 20

    /// How long an `.automatic` tree's `syncfs` may be expected to wait for other dirty
    /// data, at the rate the machine wrote back during the extraction: 1 s.
    public static let syncfsWaitBudget: Double = 1

    /// The dirty page cache over which an `.automatic` extraction fsyncs each file as it is
    /// written instead of deciding at the end: 1 GiB, more than a fast SSD writes back in
    /// `syncfsWaitBudget`, so a `syncfs` would then be too dear whatever the rate.
    public static let deferCeiling: UInt64 = 1 << 30

    /// The shortest time a write-back rate is measured over: a shorter extraction's
    /// window (a small tree) counts as this long, so a burst of completions in it does not
    /// pass for a fast disk.
    static let rateWindowFloor: Double = 0.25

    /// Other dirty data a `syncfs` at the end of an extraction may wait for: what the
    /// machine writes back in `syncfsWaitBudget` at the rate it wrote back during the
    /// extraction (`writtenBack` bytes over `seconds`), and never less than
    /// `syncfsAllowance`. A rate measured while little was being written is low, so the
    /// allowance errs towards fsyncing each file; with many agents on one disk, or an
    /// application writing steadily, it is what the disk is draining now. (The counter is
    /// every device's, as the dirty page cache is.)
    static func allowance(writtenBack: UInt64?, seconds: Double) -> UInt64 {
        guard let writtenBack, seconds.isFinite, seconds >= 0 else { return syncfsAllowance }
        let bytes = Double(writtenBack) / max(seconds, rateWindowFloor) * syncfsWaitBudget
        guard bytes < Double(UInt64.max / 2) else { return UInt64.max / 2 }
        return max(syncfsAllowance, UInt64(bytes))
    }

    /// Bytes of page cache the machine has written back since it started (`/proc/vmstat`'s
    /// nr_written, in pages); nil where it cannot be read.
    public static func writtenBackBytes() -> UInt64? {
        let fd = open("/proc/vmstat", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 32768)
        var count = 0
        while count < buffer.count {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + count, $0.count - count) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { break }
            count += n
        }
        guard let pages = parseWrittenPages(buffer[0..<count]) else { return nil }
        return pages * UInt64(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// nr_written from the text of `/proc/vmstat`; nil if it is missing.
    static func parseWrittenPages(_ text: ArraySlice<UInt8>) -> UInt64? {
        for line in text.split(separator: UInt8(ascii: "\n")) {
            let fields = line.split(separator: UInt8(ascii: " "))
            guard fields.count == 2, fields[0].elementsEqual("nr_written".utf8) else { continue }
            return UInt64(String(decoding: fields[1], as: UTF8.self))
        }
        return nil
    }

    /// The machine's page cache that is dirty or being written back, in bytes
    /// (`/proc/meminfo`'s Dirty plus Writeback); nil where it cannot be read.
    public static func dirtyPageCacheBytes() -> UInt64? {
        let fd = open("/proc/meminfo", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 8192)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        return parseDirtyBytes(buffer[0..<count])
    }

    /// The dirty page cache that may be on the file system of the directory open as `fd`:
    /// the machine's (`dirtyPageCacheBytes`) less the delayed-allocation data of every other
    /// ext4 file system (`OtherFileSystemsDirt`), which cannot be on this one. Still an
    /// upper bound of this file system's; nil where the machine's cannot be read.
    public static func dirtyPageCacheBytes(forDirectory fd: Int32) -> UInt64? {
        var st = stat()
        let others = fstat(fd, &st) == 0 ? OtherFileSystemsDirt.bytes(besides: st.st_dev) : 0
        guard let all = dirtyPageCacheBytes() else { return nil }
        return all > others ? all - others : 0
    }

    /// Dirty plus Writeback, in bytes, from the text of `/proc/meminfo`; nil if either is missing.
    static func parseDirtyBytes(_ text: ArraySlice<UInt8>) -> UInt64? {
        var dirty: UInt64?, writeback: UInt64?
        for line in text.split(separator: UInt8(ascii: "\n")) {
            let fields = line.split(separator: UInt8(ascii: " "))
            guard fields.count >= 2, let kib = UInt64(String(decoding: fields[1], as: UTF8.self)) else { continue }
            switch String(decoding: fields[0], as: UTF8.self) {
            case "Dirty:": dirty = kib * 1024
            case "Writeback:": writeback = kib * 1024
            default: continue
            }
        }
        guard let dirty, let writeback else { return nil }
        return dirty + writeback
    }

    /// `.automatic`, as an extraction starts: whether to defer the syncs to the decision
    /// at the end (the dirty page cache is not over `deferCeiling`), or to fsync each file
    /// as it is written.
    static func defersToSyncfs(dirtyAtStart: UInt64?) -> Bool {
        guard let dirtyAtStart else { return false }
        return dirtyAtStart <= deferCeiling
    }

    /// `.automatic`, as a deferred extraction ends: whether one `syncfs` waits for at most
    /// the tree's own `treeBytes` and `allowance` (`allowance(writtenBack:seconds:)`).
    static func syncfsStillCheap(dirtyAtEnd: UInt64?, treeBytes: UInt64, allowance: UInt64 = syncfsAllowance) -> Bool {
        guard let dirtyAtEnd else { return false }
        let (bound, overflow) = treeBytes.addingReportingOverflow(allowance)
        return overflow || dirtyAtEnd <= bound
    }

    /// `TMPFS_MAGIC` and `RAMFS_MAGIC` (linux/magic.h).
    static let memoryFileSystems: Set<Int64> = [0x0102_1994, 0x8584_58f6]
}
