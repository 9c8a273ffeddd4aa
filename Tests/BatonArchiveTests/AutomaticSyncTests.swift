@testable import BatonArchive
import BatonTestSupport
import Foundation
import Glibc
import Synchronization
import Testing

/// `releaseSync: auto` (`TreeDurability.automatic`): one `syncfs` when the machine's dirty
/// page cache is small as the extraction starts and still small (besides the tree) as it
/// ends; each file fsynced otherwise, the files opened again by name when the dirty page
/// cache grew during the extraction. The dirty page cache is given by the test; the syncs
/// are the real ones, and the tree is the same whichever was chosen.
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
    func extract(start: UInt64?, end: UInt64?) throws -> (synced: TreeDurability, asked: Int, inMemory: Bool) {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        let dirty = Dirty(start: start, end: end)
        let stream = try ArchiveStream(
            format: .tar, into: sandbox.staging, limits: ExtractionLimits(), durability: .automatic,
            dirtyPageCache: { dirty.read() })
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

    @Test("much dirty at the start: each file fsynced, and not asked again")
    func eachFileWhenMuchIsDirty() throws {
        let result = try extract(start: 512 << 20, end: 0)
        #expect(result.synced == (result.inMemory ? .none : .eachFile))
        if !result.inMemory { #expect(result.asked == 1) }
    }

    @Test("little dirty at the start, much at the end: each file opened again and fsynced")
    func eachFileWhenDirtyGrew() throws {
        let result = try extract(start: 0, end: 512 << 20)
        #expect(result.synced == (result.inMemory ? .none : .eachFile))
    }

    @Test("the dirty page cache cannot be read: each file fsynced")
    func eachFileWhenUnknown() throws {
        let result = try extract(start: nil, end: nil)
        #expect(result.synced == (result.inMemory ? .none : .eachFile))
    }

    @Test("the tree's own bytes do not count against the allowance at the end")
    func allowanceAtTheEnd() {
        let allowance = TreeDurability.syncfsAllowance
        #expect(TreeDurability.defersToSyncfs(dirtyAtStart: allowance))
        #expect(!TreeDurability.defersToSyncfs(dirtyAtStart: allowance + 1))
        #expect(!TreeDurability.defersToSyncfs(dirtyAtStart: nil))
        #expect(TreeDurability.syncfsStillCheap(dirtyAtEnd: 100 << 20, treeBytes: (100 << 20) - allowance))
        #expect(!TreeDurability.syncfsStillCheap(dirtyAtEnd: (100 << 20) + 1, treeBytes: (100 << 20) - allowance))
        #expect(TreeDurability.syncfsStillCheap(dirtyAtEnd: .max, treeBytes: .max))
        #expect(!TreeDurability.syncfsStillCheap(dirtyAtEnd: nil, treeBytes: 0))
    }

    @Test("Dirty and Writeback read from /proc/meminfo")
    func meminfo() throws {
        let text = Array("MemTotal:       24683784 kB\nDirty:              1204 kB\nWriteback:            16 kB\nAnonPages:  1 kB\n".utf8)
        #expect(TreeDurability.parseDirtyBytes(text[...]) == 1220 * 1024)
        #expect(TreeDurability.parseDirtyBytes(Array("Dirty: 5 kB\n".utf8)[...]) == nil)
        #expect(TreeDurability.dirtyPageCacheBytes() != nil, "this machine's /proc/meminfo")
    }
}
