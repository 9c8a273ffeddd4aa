import Glibc

/// Fsyncs files in the background, many at once, while the extractor goes on writing the
/// next ones, and hands them over in batches.
///
/// Why batches: what a file's fsync costs beyond the one `syncfs` it replaces is mostly
/// per-file overhead, not the disk. Handed over one at a time (each file its own
/// `sync_file_range` as soon as it was written, and its own wake-up of a thread to fsync
/// it), a 2,000-file tree cost about twice the CPU of writing it and one `syncfs`
/// (measured on ext4 with a journal, a loop device on this VM's disk: 190 to 230 ms of the
/// machine's time against 90 to 110). Batched, the writeback of a batch's files is started
/// in one tight loop (the block layer merges the neighbouring writes of files written one
/// after the other into few requests), and a batch wakes each worker once rather than once
/// per file: 140 to 160 ms, wall time within 10 to 30 % of the `syncfs`. One at a time on the
/// extractor's thread, each fsync (a journal commit and a disk cache flush) stopped the
/// extraction; several workers let concurrent fsyncs share one journal commit.
///
/// Files are batched by count and by bytes, so a tree of a few large files still has its
/// writeback started early, and the descriptors held are bounded (`maxInFlight`).
final class FileSyncer: @unchecked Sendable {
    /// Files per batch.
    static let batchFiles = 128
    /// Bytes written per batch: a batch of large files is handed over before it has
    /// 128 of them, so their writeback starts while the extraction goes on.
    static let batchBytes: UInt64 = 8 << 20
    /// Descriptors handed over and not yet synced and closed, at most.
    static let maxInFlight = 256
    /// Worker threads fsyncing at once. Measured with 2 to 64: below 8, the fsyncs wait on
    /// each other's disk flushes; above 16, nothing more is gained.
    static let workers = 16

    private struct Item {
        let fd: Int32
        /// As the archive names it; nil for the staging directory itself.
        let name: [UInt8]?
    }

    /// The file system call that makes one file durable; `fsync` but for tests.
    private let syncFile: @Sendable (Int32) -> Int32
    private let startWriteBack: @Sendable (Int32) -> Void

    // The extractor's side (one thread).
    private var batch: [Item] = []
    private var batchBytes: UInt64 = 0
    private var threads: [pthread_t] = []

    // Shared with the workers, under `mutex`.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    /// Signalled when work arrives or the syncer is finishing.
    private let workAvailable = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// Signalled when a worker closed a descriptor.
    private let spaceAvailable = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var queue: [Item] = []
    private var queueHead = 0
    private var inFlight = 0
    private var closing = false
    private var abandoned = false
    private var failure: (name: [UInt8]?, errno: Int32)?

    /// False: only the writeback of each batch is started, and its files closed; the end of
    /// the extraction makes them durable (`TreeDurability.automatic`, deferring).
    private let fsyncs: Bool

    init(
        fsyncs: Bool = true,
        syncFile: @escaping @Sendable (Int32) -> Int32 = { Glibc.fsync($0) },
        startWriteBack: @escaping @Sendable (Int32) -> Void = { WriteBack.start($0) }
    ) {
        self.fsyncs = fsyncs
        self.syncFile = syncFile
        self.startWriteBack = startWriteBack
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(workAvailable, nil)
        pthread_cond_init(spaceAvailable, nil)
    }

    deinit {
        drain()
        pthread_cond_destroy(spaceAvailable)
        pthread_cond_destroy(workAvailable)
        pthread_mutex_destroy(mutex)
        spaceAvailable.deallocate()
        workAvailable.deallocate()
        mutex.deallocate()
    }

    /// Takes ownership of `fd`, of a file whose last byte, mode and times are written, or of
    /// a directory whose entries are all made: it is fsynced in the background and closed.
    /// `bytes` is the file's size; `name` is nil for the staging directory.
    func sync(_ fd: Int32, name: [UInt8]?, bytes: UInt64) {
        batch.append(Item(fd: fd, name: name))
        batchBytes += bytes
        if batch.count >= Self.batchFiles || batchBytes >= Self.batchBytes { handOver() }
    }

    /// Waits for every file handed over to be fsynced and closed; throws the first fsync
    /// that failed.
    func finish() throws(ExtractionError) {
        handOver()
        stopWorkers()
        if let failure = locked({ self.failure }) {
            throw .system(failure.name == nil ? "fsync staging directory" : "fsync", failure.name, errno: failure.errno)
        }
    }

    /// Closes every file handed over, fsyncing none that is not being fsynced already, and
    /// stops the workers: the extraction failed anyway. Safe to call more than once.
    func drain() {
        for item in batch { Glibc.close(item.fd) }
        batch.removeAll()
        batchBytes = 0
        locked { self.abandoned = true }
        stopWorkers()
    }

    /// Starts the writeback of the batch's files, one after the other, then queues them
    /// for the workers (waiting while `maxInFlight` descriptors are in their hands).
    private func handOver() {
        guard !batch.isEmpty else { return }
        for item in batch { startWriteBack(item.fd) }
        let items = batch
        batch.removeAll(keepingCapacity: true)
        batchBytes = 0
        guard fsyncs else {
            for item in items { Glibc.close(item.fd) }
            return
        }
        if threads.isEmpty { startWorkers() }
        guard !threads.isEmpty else {
            // No thread could be made: every file is still synced, here, without the overlap.
            for item in items {
                let code: Int32 = syncFile(item.fd) == 0 ? 0 : errno
                Glibc.close(item.fd)
                if code != 0 { locked { if self.failure == nil { self.failure = (item.name, code) } } }
            }
            return
        }
        pthread_mutex_lock(mutex)
        while inFlight > 0, inFlight + items.count > Self.maxInFlight {
            pthread_cond_wait(spaceAvailable, mutex)
        }
        if queueHead > 0, queueHead == queue.count {
            queue.removeAll(keepingCapacity: true)
            queueHead = 0
        }
        queue.append(contentsOf: items)
        inFlight += items.count
        pthread_cond_broadcast(workAvailable)
        pthread_mutex_unlock(mutex)
    }

    private func startWorkers() {
        // An fsync needs little stack; the default (8 MiB of address space each) is not needed.
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setstacksize(&attributes, 256 << 10)
        for _ in 0..<Self.workers {
            var thread = pthread_t()
            let context = Unmanaged.passRetained(self).toOpaque()
            let status = pthread_create(&thread, &attributes, { context in
                let syncer = Unmanaged<FileSyncer>.fromOpaque(context!).takeRetainedValue()
                syncer.work()
                return nil
            }, context)
            if status == 0 {
                threads.append(thread)
            } else {
                Unmanaged<FileSyncer>.fromOpaque(context).release()
            }
        }
    }

    /// A worker: takes one file at a time until the syncer finishes and nothing is left.
    private func work() {
        pthread_mutex_lock(mutex)
        while true {
            while queueHead == queue.count, !closing { pthread_cond_wait(workAvailable, mutex) }
            guard queueHead < queue.count else { break }
            let item = queue[queueHead]
            queueHead += 1
            let skip = abandoned
            pthread_mutex_unlock(mutex)
            let code: Int32 = skip || syncFile(item.fd) == 0 ? 0 : errno
            Glibc.close(item.fd)
            pthread_mutex_lock(mutex)
            if code != 0, failure == nil { failure = (item.name, code) }
            inFlight -= 1
            pthread_cond_signal(spaceAvailable)
        }
        pthread_mutex_unlock(mutex)
    }

    /// Lets the workers empty the queue, then joins them.
    private func stopWorkers() {
        guard !threads.isEmpty else { return }
        pthread_mutex_lock(mutex)
        closing = true
        pthread_cond_broadcast(workAvailable)
        pthread_mutex_unlock(mutex)
        for thread in threads { pthread_join(thread, nil) }
        threads.removeAll()
        locked { self.closing = false }
    }

    private func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body()
    }
}
