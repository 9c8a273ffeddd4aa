#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// How much of the machine's dirty page cache cannot be on a given file system: the
/// delayed-allocation data of every other ext4 file system mounted
/// (`/sys/fs/ext4/<device>/delayed_allocation_blocks`, dirty data written to new blocks
/// that ext4 has not yet allocated). `/proc/meminfo`'s Dirty and Writeback count every
/// file system's pages; subtracting what provably sits on the others leaves an upper
/// bound of this one's that is far closer on a host whose applications write to another
/// disk, or on a machine holding many hosts' file systems (the fleet bench's
/// `HOST_DISKS=1`). Never more than the truth: other file systems' data that is already
/// allocated, or being written back, or on other kinds of file systems, stays counted,
/// so the estimate only errs towards fsyncing each file.
enum OtherFileSystemsDirt {
    /// An ext4 file system from `/proc/self/mountinfo`: its device number and a place it is mounted.
    struct Mount: Equatable {
        let major: UInt32, minor: UInt32
        let mountPoint: String
    }

    /// Bytes of delayed-allocation data on ext4 file systems other than the one of
    /// device `device`; 0 where none can be read.
    static func bytes(besides device: dev_t) -> UInt64 {
        let (major, minor) = split(device)
        var total: UInt64 = 0
        for mount in ext4Mounts(read("/proc/self/mountinfo", limit: 1 << 20) ?? []) where (mount.major, mount.minor) != (major, minor) {
            guard let name = deviceName(major: mount.major, minor: mount.minor),
                let text = read("/sys/fs/ext4/\(name)/delayed_allocation_blocks", limit: 64),
                let blocks = UInt64(String(decoding: text, as: UTF8.self).filter(\.isNumber)),
                let blockSize = blockSize(mount.mountPoint)
            else { continue }
            let (bytes, overflow) = blocks.multipliedReportingOverflow(by: blockSize)
            if !overflow { total &+= bytes }
        }
        return total
    }

    /// The ext4 file systems of a mountinfo text, each device once.
    static func ext4Mounts(_ text: [UInt8]) -> [Mount] {
        var seen: [Mount] = []
        for line in text.split(separator: UInt8(ascii: "\n")) {
            let fields = line.split(separator: UInt8(ascii: " ")).map { String(decoding: $0, as: UTF8.self) }
            // id parent major:minor root mountpoint options [optional...] - fstype source superoptions
            guard fields.count >= 8, let dash = fields.firstIndex(of: "-"), dash + 1 < fields.count, dash >= 6,
                fields[dash + 1] == "ext4"
            else { continue }
            let numbers = fields[2].split(separator: ":")
            guard numbers.count == 2, let major = UInt32(numbers[0]), let minor = UInt32(numbers[1]) else { continue }
            guard !seen.contains(where: { $0.major == major && $0.minor == minor }) else { continue }
            seen.append(Mount(major: major, minor: minor, mountPoint: unescape(fields[4])))
        }
        return seen
    }

    /// mountinfo writes space, tab, newline and backslash in paths as octal escapes.
    static func unescape(_ path: String) -> String {
        guard path.contains("\\") else { return path }
        var bytes: [UInt8] = []
        let source = Array(path.utf8)
        var i = 0
        while i < source.count {
            if source[i] == UInt8(ascii: "\\"), i + 4 <= source.count,
                let value = UInt8(String(decoding: source[(i + 1)..<(i + 4)], as: UTF8.self), radix: 8)
            {
                bytes.append(value)
                i += 4
            } else {
                bytes.append(source[i])
                i += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The kernel's name of a block device (`/sys/dev/block/M:m` links to its directory).
    static func deviceName(major: UInt32, minor: UInt32) -> String? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBytes { readlink("/sys/dev/block/\(major):\(minor)", $0.baseAddress!.assumingMemoryBound(to: CChar.self), $0.count) }
        guard n > 0 else { return nil }
        let target = String(decoding: buffer[0..<n], as: UTF8.self)
        return target.split(separator: "/").last.map(String.init)
    }

    /// `major(3)` and `minor(3)` of a `dev_t` (glibc's encoding; macros Swift does not import).
    static func split(_ device: dev_t) -> (UInt32, UInt32) {
        let d = UInt64(device)
        let major = ((d >> 8) & 0xfff) | ((d >> 32) & ~UInt64(0xfff))
        let minor = (d & 0xff) | ((d >> 12) & ~UInt64(0xff))
        return (UInt32(truncatingIfNeeded: major), UInt32(truncatingIfNeeded: minor))
    }

    /// `statfs(2)`'s `f_bsize` for a path.
    static func blockSize(_ path: String) -> UInt64? {
        guard let size = FileSystemStatus.of(path: path)?.blockSize, size > 0 else { return nil }
        return UInt64(size)
    }

    /// Up to `limit` bytes of a file; nil if it cannot be opened.
    static func read(_ path: String, limit: Int) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: min(limit, 65536))
        var count = 0
        while count < limit {
            if count == buffer.count { buffer.append(contentsOf: repeatElement(0, count: min(buffer.count, limit - count))) }
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + count, $0.count - count) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { break }
            count += n
        }
        return Array(buffer[0..<count])
    }
}
