@testable import BatonArchive
import BatonTestSupport
import Foundation
import Glibc
import Synchronization
import Testing

/// `releaseSync: auto` (`TreeDurability.automatic`): one `syncfs` when the machine's dirty
/// page cache as the extraction ends is at most the tree's bytes plus what the machine
/// writes back in a second at the rate it did during the extraction (never less than 32
/// MiB); each file fsynced otherwise: as written when over 1 GiB was dirty at the start,
/// opened again by name at the end when not. The dirty page cache and the bytes written
/// back are given by the test; the syncs are the real ones, and the tree is the same
/// whichever was chosen.
@Suite struct AutomaticSyncTests {
    static let archive = tar {
        $0.directory("./")
        $0.file("./bin/server", "#!/bin/sh\necho hi\n", mode: 0o755)
        $0.file("./lib/libapp.so", [UInt8](repeating: 0xab, count: 300_000), mode: 0o644)
        $0.symlink("./lib/current", to: "libapp.so")
        $0.hardLink("./bin/server-again", to: "./bin/server")
        for i in 0..<300 { $0.file("./many/d\(i % 7)/f\(i).txt", "file \(i)\n", mode: 0o640) }
    }

    /// The dirty page cache the test reports: `start` at the first question, `end` after.
    final class Dirty: Sendable {
        let answers: Mutex<[UInt64?]>
        let asked = Mutex(0)
        init(start: UInt64?, end: UInt64?) { answers = Mutex([start, end]) }
        func read() -> UInt64? {
            asked.withLock { $0 += 1 }
            return answers.withLock { $0.count > 1 ? $0.removeFirst() : $0[0] }
        }
    }

    /// Extracts the archive with `.automatic` and the given dirty page cache; returns how it
    /// was synced, after checking the tree.
    /// `writtenBack`: what the machine's written-back counter says at the start and after.
    func extract(
        start: UInt64?, end: UInt64?, writtenBack: (UInt64?, UInt64?) = (0, 0)
    ) throws -> (synced: TreeDurability, asked: Int, inMemory: Bool) {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        let dirty = Dirty(start: start, end: end)
        let written = Dirty(start: writtenBack.0, end: writtenBack.1)
        let stream = try ArchiveStream(
            format: .tar, into: sandbox.staging, limits: ExtractionLimits(), durability: .automatic,
            dirtyPageCache: { dirty.read() }, writtenBack: { written.read() })
        defer { stream.close() }
        try Self.archive.withUnsafeBytes { try stream.consume($0) }
        let summary = try stream.finish()
        #expect(summary.files == 302)
        #expect(sandbox.contents("lib/libapp.so") == [UInt8](repeating: 0xab, count: 300_000))
        #expect(sandbox.contents("many/d5/f299.txt") == Array("file 299\n".utf8))
        #expect(sandbox.mode("bin/server") == 0o755)
        #expect(sandbox.linkTarget("lib/current") == "libapp.so")
        #expect(sandbox.nothingOutside())
        let fd = open(sandbox.staging, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        defer { close(fd) }
        let inMemory = TreeDurability.automatic.effective(forDirectory: fd) == .none
        return (summary.synced, dirty.asked.withLock { $0 }, inMemory)
    }

    @Test("little dirty at the start and at the end: one syncfs")
    func syncfsWhenLittleIsDirty() throws {
        let result = try extract(start: 1 << 20, end: 2 << 20)
        #expect(result.synced == (result.inMemory ? .none : .fileSystem))
        if !result.inMemory { #expect(result.asked == 2, "asked at the start and at the end") }
    }

    @Test("over 1 GiB dirty at the start: each file fsynced as written, and not asked again")
    func eachFileWhenMuchIsDirty() throws {
        let result = try extract(start: TreeDurability.deferCeiling + 1, end: 0)
        #expect(result.synced == (result.inMemory ? .none : .eachFile))
        if !result.inMemory { #expect(result.asked == 1) }
    }

    @Test("little dirty at the start, much at the end, little written back: each file opened again and fsynced")
    func eachFileWhenDirtyGrew() throws {
        let result = try extract(start: 0, end: 512 << 20, writtenBack: (1 << 30, (1 << 30) + (16 << 20)))
        #expect(result.synced == (result.inMemory ? .none : .eachFile))
    }

    @Test("much dirty at both ends, but the machine wrote back fast meanwhile (other agents on the disk): one syncfs")
    func syncfsWhenTheDiskKeepsUp() throws {
        let result = try extract(start: 512 << 20, end: 512 << 20, writtenBack: (1 << 30, 1 << 42))
        #expect(result.synced == (result.inMemory ? .none : .fileSystem))
    }

    @Test("the written-back counter cannot be read: the fixed allowance")
    func fixedAllowanceWhenUnknown() throws {
        let little = try extract(start: 0, end: 16 << 20, writtenBack: (nil, nil))
        #expect(little.synced == (little.inMemory ? .none : .fileSystem))
        let much = try extract(start: 0, end: 512 << 20, writtenBack: (nil, nil))
        #expect(much.synced == (much.inMemory ? .none : .eachFile))
    }

    @Test("the dirty page cache cannot be read: each file fsynced")
    func eachFileWhenUnknown() throws {
        let result = try extract(start: nil, end: nil)
        #expect(result.synced == (result.inMemory ? .none : .eachFile))
    }

    @Test("the tree's own bytes do not count against the allowance at the end")
    func allowanceAtTheEnd() {
        let allowance = TreeDurability.syncfsAllowance
        #expect(TreeDurability.defersToSyncfs(dirtyAtStart: TreeDurability.deferCeiling))
        #expect(!TreeDurability.defersToSyncfs(dirtyAtStart: TreeDurability.deferCeiling + 1))
        #expect(!TreeDurability.defersToSyncfs(dirtyAtStart: nil))
        #expect(TreeDurability.syncfsStillCheap(dirtyAtEnd: 100 << 20, treeBytes: (100 << 20) - allowance))
        #expect(!TreeDurability.syncfsStillCheap(dirtyAtEnd: (100 << 20) + 1, treeBytes: (100 << 20) - allowance))
        #expect(TreeDurability.syncfsStillCheap(dirtyAtEnd: .max, treeBytes: .max))
        #expect(!TreeDurability.syncfsStillCheap(dirtyAtEnd: nil, treeBytes: 0))
    }

    @Test("the allowance: a second of the rate written back during the extraction, never under 32 MiB")
    func rateAllowance() {
        let fixed = TreeDurability.syncfsAllowance
        #expect(TreeDurability.allowance(writtenBack: nil, seconds: 1) == fixed)
        #expect(TreeDurability.allowance(writtenBack: 0, seconds: 1) == fixed)
        #expect(TreeDurability.allowance(writtenBack: 16 << 20, seconds: 1) == fixed)
        #expect(TreeDurability.allowance(writtenBack: 300 << 20, seconds: 1) == 300 << 20)
        #expect(TreeDurability.allowance(writtenBack: 300 << 20, seconds: 2) == 150 << 20)
        // A short window counts as a quarter of a second: a burst is not a fast disk.
        #expect(TreeDurability.allowance(writtenBack: 100 << 20, seconds: 0.01) == 400 << 20)
        #expect(TreeDurability.allowance(writtenBack: .max, seconds: 1) == UInt64.max / 2)
        #expect(TreeDurability.allowance(writtenBack: 300 << 20, seconds: .nan) == fixed)
        #expect(TreeDurability.syncfsStillCheap(dirtyAtEnd: 316 << 20, treeBytes: 16 << 20, allowance: 300 << 20))
        #expect(!TreeDurability.syncfsStillCheap(dirtyAtEnd: (316 << 20) + 1, treeBytes: 16 << 20, allowance: 300 << 20))
    }

    @Test("nr_written read from /proc/vmstat")
    func vmstat() throws {
        #expect(TreeDurability.parseWrittenPages(Array("nr_dirtied 9\nnr_written 7\nnr_written_x 1\n".utf8)[...]) == 7)
        #expect(TreeDurability.parseWrittenPages(Array("nr_dirtied 9\n".utf8)[...]) == nil)
        let first = try #require(TreeDurability.writtenBackBytes(), "this machine's /proc/vmstat")
        #expect(first % 4096 == 0)
    }

    @Test("mountinfo: each ext4 file system once, its mount point unescaped; device numbers split as glibc does")
    func ext4Mounts() {
        let text = Array("""
            22 27 0:21 / /proc rw,relatime - proc proc rw
            27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
            40 27 7:3 / /mnt/host\\0401 rw,relatime shared:5 - ext4 /dev/loop3 rw
            41 27 7:3 /sub /srv/bind rw,relatime - ext4 /dev/loop3 rw
            42 27 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw
            43 27 8:1 / /data rw,relatime - xfs /dev/sda1 rw
            """.utf8)
        let mounts = OtherFileSystemsDirt.ext4Mounts(text)
        #expect(mounts == [
            OtherFileSystemsDirt.Mount(major: 254, minor: 0, mountPoint: "/"),
            OtherFileSystemsDirt.Mount(major: 7, minor: 3, mountPoint: "/mnt/host 1"),
        ])
        #expect(OtherFileSystemsDirt.split(dev_t(0x0700)) == (7, 0))
        // major 259, minor 300: glibc's encoding puts the high minor bits above bit 12.
        let large = (UInt64(259 & 0xfff) << 8) | UInt64(300 & 0xff) | (UInt64(300 & ~0xff) << 12)
        #expect(OtherFileSystemsDirt.split(dev_t(large)) == (259, 300))
    }

    @Test("dirty data on another ext4 file system is not counted against this one (root: a loop device)")
    func anotherFileSystemsDirtIsLeftOut() throws {
        // Needs root (losetup, mount), as .ci/run has; elsewhere there is no second file system to make.
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/sbin/losetup") else { return }
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        let image = sandbox.dir.child("other.img"), mountPoint = sandbox.dir.child("other")
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        try #require(FileManager.default.createFile(atPath: image, contents: nil) && truncate(image, 256 << 20) == 0)
        #expect(try ProcessRunner.run("/usr/sbin/mkfs.ext4", ["-q", "-F", image]).status == 0)
        let loop = try ProcessRunner.run("/usr/sbin/losetup", ["-f", "--show", image])
        try #require(loop.status == 0, "\(loop.stderr)")
        let device = loop.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        defer { _ = try? ProcessRunner.run("/usr/sbin/losetup", ["-d", device]) }
        try #require(try ProcessRunner.run("/usr/bin/mount", [device, mountPoint]).status == 0)
        defer { _ = try? ProcessRunner.run("/usr/bin/umount", [mountPoint]) }

        // 64 MiB written to the other file system and not synced: dirty, in delayed allocation.
        let chunk = [UInt8](repeating: 0x5a, count: 1 << 20)
        let fd = open("\(mountPoint)/dirty.bin", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        try #require(fd >= 0)
        for _ in 0..<64 { _ = chunk.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } }
        close(fd)
        var st = stat()
        try #require(stat(sandbox.staging, &st) == 0)
        let others = OtherFileSystemsDirt.bytes(besides: st.st_dev)
        #expect(others >= 48 << 20, "the other file system's delayed allocation: \(others) bytes")
        let here = open(sandbox.staging, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        defer { close(here) }
        let machine = try #require(TreeDurability.dirtyPageCacheBytes())
        let thisOne = try #require(TreeDurability.dirtyPageCacheBytes(forDirectory: here))
        #expect(thisOne + (48 << 20) <= machine, "this file system's estimate \(thisOne) against the machine's \(machine)")
        // The other file system's own estimate keeps its dirt.
        let there = open(mountPoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        defer { close(there) }
        #expect(try #require(TreeDurability.dirtyPageCacheBytes(forDirectory: there)) >= 48 << 20)
    }

    @Test("Dirty and Writeback read from /proc/meminfo")
    func meminfo() throws {
        let text = Array("MemTotal:       24683784 kB\nDirty:              1204 kB\nWriteback:            16 kB\nAnonPages:  1 kB\n".utf8)
        #expect(TreeDurability.parseDirtyBytes(text[...]) == 1220 * 1024)
        #expect(TreeDurability.parseDirtyBytes(Array("Dirty: 5 kB\n".utf8)[...]) == nil)
        #expect(TreeDurability.dirtyPageCacheBytes() != nil, "this machine's /proc/meminfo")
    }
}
