import Dispatch
import Glibc

/// Fsyncs files in the background, many at once, while the extractor goes on writing the
/// next ones. One at a time on the extractor's thread, each fsync (a journal commit and a
/// disk cache flush) stopped the extraction: measured on a shared 2-core VM, that made a
/// 2,000-file release slower than one `syncfs`. Concurrent fsyncs overlap the extraction,
/// and the file system folds those that arrive together into one journal commit.
final class FileSyncer: @unchecked Sendable {
    /// Files handed over and not yet synced and closed: bounds the descriptors held.
    static let inFlight = 64

    private let slots = DispatchSemaphore(value: FileSyncer.inFlight)
    private let group = DispatchGroup()
    private let queue = DispatchQueue.global()
    private let lock = DispatchQueue(label: "baton.archive.filesyncer")
    private var failure: (name: [UInt8], errno: Int32)?

    /// Takes ownership of `fd`: starts its writeback, fsyncs it in the background, closes it.
    func sync(_ fd: Int32, name: [UInt8]) {
        WriteBack.start(fd)
        slots.wait()
        group.enter()
        queue.async {
            if fsync(fd) != 0 {
                let code = errno
                self.lock.sync { if self.failure == nil { self.failure = (name, code) } }
            }
            Glibc.close(fd)
            self.slots.signal()
            self.group.leave()
        }
    }

    /// Waits for every file handed over; throws the first fsync that failed.
    func finish() throws(ExtractionError) {
        group.wait()
        if let failure = lock.sync(execute: { self.failure }) {
            throw .system("fsync", failure.name, errno: failure.errno)
        }
    }

    /// Waits for the files in flight (their descriptors are closed), ignoring failures: the
    /// extraction failed anyway.
    func drain() { group.wait() }
}
