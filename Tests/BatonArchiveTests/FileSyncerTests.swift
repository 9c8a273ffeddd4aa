@testable import BatonArchive
import BatonTestSupport
import Foundation
import Glibc
import Synchronization
import Testing

/// `FileSyncer` on real files: each one fsynced (the real `fsync`, observed by the inode it
/// was called on) after its writeback was started, handed over in batches, with the
/// descriptors held bounded and the first failure reported by the file's name.
@Suite struct FileSyncerTests {
    /// What the syncer did, observed through the calls it makes.
    final class Observed: Sendable {
        struct State {
            var writeBackStarted: [ino_t] = []
            var synced: [ino_t] = []
            var syncing = 0
            var mostSyncingAtOnce = 0
            /// Inodes whose fsync came before their writeback was started.
            var syncedBeforeWriteBack: [ino_t] = []
        }
        let state = Mutex(State())
        /// A file whose fsync fails with EIO.
        let failing: ino_t?
        let pause: UInt32

        init(failing: ino_t? = nil, pauseMicroseconds: UInt32 = 0) {
            self.failing = failing
            self.pause = pauseMicroseconds
        }

        static func inode(_ fd: Int32) -> ino_t {
            var status = stat()
            return fstat(fd, &status) == 0 ? status.st_ino : 0
        }

        func syncer() -> FileSyncer {
            FileSyncer(
                syncFile: { fd in
                    let inode = Self.inode(fd)
                    self.state.withLock {
                        $0.syncing += 1
                        $0.mostSyncingAtOnce = max($0.mostSyncingAtOnce, $0.syncing)
                        if !$0.writeBackStarted.contains(inode) { $0.syncedBeforeWriteBack.append(inode) }
                    }
                    if self.pause > 0 { usleep(self.pause) }
                    let status: Int32
                    if inode == self.failing {
                        errno = EIO
                        status = -1
                    } else {
                        status = fsync(fd)
                    }
                    self.state.withLock {
                        $0.syncing -= 1
                        if status == 0 { $0.synced.append(inode) }
                    }
                    return status
                },
                startWriteBack: { fd in
                    let inode = Self.inode(fd)
                    self.state.withLock { $0.writeBackStarted.append(inode) }
                    WriteBack.start(fd)
                })
        }

        var current: State { state.withLock { $0 } }
    }

    /// Creates file `i` in `dir` with `bytes` bytes; returns its descriptor and inode.
    static func makeFile(_ dir: String, _ i: Int, bytes: Int = 1) throws -> (fd: Int32, inode: ino_t) {
        let fd = open("\(dir)/f\(i)", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        try #require(fd >= 0)
        let data = [UInt8](repeating: UInt8(truncatingIfNeeded: i), count: bytes)
        try #require(data.withUnsafeBytes { write(fd, $0.baseAddress, bytes) } == bytes)
        return (fd, Observed.inode(fd))
    }

    /// Descriptors of this process open on files under `dir` (by /proc/self/fd: a number
    /// closed and reused by another test names another file).
    static func openUnder(_ dir: String) -> [String] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return entries.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\($0)") }
            .filter { $0.hasPrefix(dir + "/") }
    }

    @Test("every file is fsynced and closed, its writeback started first, in batches of 128")
    func everyFileSynced() throws {
        let dir = try TemporaryDirectory(prefix: "baton-syncer")
        defer { dir.remove() }
        let observed = Observed()
        let syncer = observed.syncer()
        var inodes: [ino_t] = []
        for i in 0..<300 {
            let (fd, inode) = try Self.makeFile(dir.path, i)
            inodes.append(inode)
            syncer.sync(fd, name: Array("f\(i)".utf8), bytes: 1)
            // Nothing is started before a batch is complete, then the whole batch at once.
            let started = observed.current.writeBackStarted.count
            #expect(started == (i + 1) / FileSyncer.batchFiles * FileSyncer.batchFiles, "after file \(i)")
        }
        try syncer.finish()
        let state = observed.current
        #expect(Set(state.synced) == Set(inodes))
        #expect(state.synced.count == 300, "each file once")
        #expect(Set(state.writeBackStarted) == Set(inodes))
        #expect(state.syncedBeforeWriteBack.isEmpty)
        #expect(Self.openUnder(dir.path).isEmpty, "every descriptor closed")
    }

    @Test("large files make a batch before 128 of them: writeback starts by the 8 MiB written")
    func batchesByBytes() throws {
        let dir = try TemporaryDirectory(prefix: "baton-syncer")
        defer { dir.remove() }
        let observed = Observed()
        let syncer = observed.syncer()
        let bytes = Int(FileSyncer.batchBytes) / 2
        for i in 0..<3 {
            let (fd, _) = try Self.makeFile(dir.path, i, bytes: bytes)
            syncer.sync(fd, name: Array("f\(i)".utf8), bytes: UInt64(bytes))
            #expect(observed.current.writeBackStarted.count == (i >= 1 ? 2 : 0), "after file \(i)")
        }
        try syncer.finish()
        #expect(observed.current.synced.count == 3)
    }

    @Test("several fsyncs at once, and never more descriptors held than the bound")
    func concurrentAndBounded() throws {
        let dir = try TemporaryDirectory(prefix: "baton-syncer")
        defer { dir.remove() }
        let observed = Observed(pauseMicroseconds: 2_000)
        let syncer = observed.syncer()
        for i in 0..<1_000 {
            let (fd, _) = try Self.makeFile(dir.path, i)
            syncer.sync(fd, name: Array("f\(i)".utf8), bytes: 1)
            // Handed over and not yet closed: at most the bound plus the batch being filled.
            let held = observed.current.writeBackStarted.count - observed.current.synced.count
            #expect(held <= FileSyncer.maxInFlight, "after file \(i)")
        }
        try syncer.finish()
        let state = observed.current
        #expect(state.synced.count == 1_000)
        #expect(state.mostSyncingAtOnce > 1, "fsyncs overlap")
        #expect(state.mostSyncingAtOnce <= FileSyncer.workers)
        #expect(Self.openUnder(dir.path).isEmpty, "every descriptor closed")
    }

    @Test("a failed fsync is reported by the file's name; every other file is still synced and closed")
    func failureNamed() throws {
        let dir = try TemporaryDirectory(prefix: "baton-syncer")
        defer { dir.remove() }
        var files: [(fd: Int32, inode: ino_t)] = []
        for i in 0..<200 { files.append(try Self.makeFile(dir.path, i)) }
        let observed = Observed(failing: files[150].inode)
        let syncer = observed.syncer()
        for (i, file) in files.enumerated() { syncer.sync(file.fd, name: Array("app/f\(i)".utf8), bytes: 1) }
        do {
            try syncer.finish()
            Issue.record("finish() should have thrown")
        } catch {
            #expect(error.code == .ioError)
            #expect(error.message.contains("app/f150"), "\(error.message)")
            #expect(error.message.contains("fsync"), "\(error.message)")
        }
        #expect(observed.current.synced.count == 199)
        #expect(Self.openUnder(dir.path).isEmpty, "every descriptor closed")
    }

    @Test("drain closes what is left and syncs nothing not yet handed over")
    func drainCloses() throws {
        let dir = try TemporaryDirectory(prefix: "baton-syncer")
        defer { dir.remove() }
        let observed = Observed()
        let syncer = observed.syncer()
        for i in 0..<10 {
            let (fd, _) = try Self.makeFile(dir.path, i)
            syncer.sync(fd, name: Array("f\(i)".utf8), bytes: 1)
        }
        syncer.drain()
        #expect(observed.current.synced.isEmpty, "an abandoned batch is not synced")
        #expect(Self.openUnder(dir.path).isEmpty, "every descriptor closed")
        syncer.drain()  // twice is harmless
    }
}
