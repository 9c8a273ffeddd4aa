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
    /// Each file and directory of the tree is fsynced, and nothing else: the files in the
    /// background while the next ones are written (`FileSyncer`), the directories at the
    /// end. Narrow: another process's dirty data is not waited for. The default.
    case eachFile = "files"
    /// Nothing is synced while the tree is written; at the end one `syncfs(2)` for the file
    /// system that holds it, then an fsync of its root. One journal commit and one disk
    /// cache flush instead of one per file, but it also waits for every other dirty byte
    /// of that file system (an application's data included). For hosts whose release
    /// file system holds little else, or many agents on one disk.
    case fileSystem = "filesystem"
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

    /// `fstatfs(2)`'s `f_type`. The Swift importer does not see `<sys/vfs.h>`, so the call is
    /// looked up at run time; `f_type` is the first field of `struct statfs` (a `long`) on
    /// every Linux architecture, and the buffer is larger than the whole struct (120 bytes
    /// on x86_64 and aarch64).
    static func fileSystemType(_ fd: Int32) -> Int64? {
        guard let fstatfs = Self.fstatfs else { return nil }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 512, alignment: 16)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0, count: 512)
        guard fstatfs(fd, buffer) == 0 else { return nil }
        return Int64(buffer.load(as: Int.self))
    }

    private static let fstatfs: (@convention(c) (Int32, UnsafeMutableRawPointer) -> Int32)? = {
        guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, "fstatfs") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int32, UnsafeMutableRawPointer) -> Int32).self)
    }()

    /// `TMPFS_MAGIC` and `RAMFS_MAGIC` (linux/magic.h).
    static let memoryFileSystems: Set<Int64> = [0x0102_1994, 0x8584_58f6]
}
