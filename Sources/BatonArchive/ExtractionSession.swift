import Glibc

/// One extraction in progress: takes the tar stream chunk by chunk, applies the policy to
/// each member and creates it relative to directory descriptors under the staging directory.
///
/// Durable (`TreeDurability.eachFile`, `.fileSystem` or `.automatic`): when `finish()` returns, every file
/// (data, mode and mtime) and every directory of the tree is on disk. Each file: the
/// written files are handed in batches to `FileSyncer`, which starts their writeback and
/// fsyncs them in the background while the next files are written; the directories are
/// fsynced at the end, and nothing else is flushed. File system: one
/// `syncfs(2)` at the end, which also waits for everyone else's dirty data. Automatic: one
/// of the two, by how much else is dirty (`TreeDurability.automatic`).
final class ExtractionSession {
    private struct OpenFile {
        let fd: Int32
        let name: [UInt8]
        let mode: mode_t
        let modificationTime: Int64
        let bytes: UInt64
    }

    private let limits: ExtractionLimits
    private var reader = TarReader()
    private var tree = ReleaseTree()
    private let handles: DirectoryHandles
    private var file: OpenFile?
    /// Directories created as parents without an entry of their own.
    private var implicitDirectories = 0
    private(set) var summary = ExtractionSummary()
    private let durability: TreeDurability
    /// `.eachFile` and `.automatic` sessions: fsyncs the files written, in the background,
    /// or only starts their writeback (`.automatic` deferring, when more than a little is dirty).
    private var syncer: FileSyncer?
    /// `.automatic` only: the dirty page cache was not over `TreeDurability.deferCeiling` as
    /// the extraction started, so the files are not fsynced as they are written; `finish()`
    /// decides.
    private let deferredToSyncfs: Bool
    /// The dirty page cache that may be on the staging directory's file system, in bytes
    /// (`TreeDurability.dirtyPageCacheBytes(forDirectory:)`, but for tests).
    private let dirtyPageCache: () -> UInt64?
    /// The bytes the machine has written back so far (`TreeDurability.writtenBackBytes`,
    /// but for tests), and what it said, and when, as a deferred extraction started: the
    /// rate in between sets what a `syncfs` at the end may wait for.
    private let writtenBack: () -> UInt64?
    private let writtenBackAtStart: UInt64?
    /// `.automatic`, deferred: whether each batch's writeback is started as it is written.
    private let startsWriteBack: Bool
    private let startedAt = ContinuousClock.now

    /// Opens the staging directory (which must exist and be empty) once, without following a symlink.
    init(
        stagingDirectory: String, limits: ExtractionLimits, durability: TreeDurability = .none,
        dirtyPageCache: (() -> UInt64?)? = nil,
        writtenBack: @escaping () -> UInt64? = TreeDurability.writtenBackBytes
    ) throws(ExtractionError) {
        self.limits = limits
        self.writtenBack = writtenBack
        let root = Glibc.open(stagingDirectory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard root >= 0 else {
            let code = errno
            throw ExtractionError(
                .ioError,
                "cannot open the staging directory \(stagingDirectory): \(errnoDescription(code)); it must be an existing directory, not a symlink"
            )
        }
        self.durability = durability.effective(forDirectory: root)
        // `root` stays open as `handles.root` until the session is closed, after `finish()`.
        let dirtyPageCache = dirtyPageCache ?? { TreeDurability.dirtyPageCacheBytes(forDirectory: root) }
        self.dirtyPageCache = dirtyPageCache
        let dirtyAtStart = self.durability == .automatic ? dirtyPageCache() : nil
        deferredToSyncfs = self.durability == .automatic && TreeDurability.defersToSyncfs(dirtyAtStart: dirtyAtStart)
        writtenBackAtStart = deferredToSyncfs ? writtenBack() : nil
        // Deferred with little dirty, a `syncfs` at the end is cheap whatever the disk's
        // rate, so the files are only written, as for `.fileSystem`: starting each batch's
        // writeback costs more CPU than it saves (one `syncfs` writes the tree back in larger
        // runs). With more dirty, the end's decision rests on the rate the machine writes
        // back at: each batch's writeback is started as it is written, so the disk works
        // while the tree is written, and what it shows is the rate it takes.
        startsWriteBack = deferredToSyncfs && (dirtyAtStart ?? 0) > TreeDurability.syncfsAllowance
        switch self.durability {
        case .eachFile: syncer = FileSyncer()
        case .automatic: syncer = !deferredToSyncfs ? FileSyncer() : startsWriteBack ? FileSyncer(fsyncs: false) : nil
        case .none, .fileSystem: syncer = nil
        }
        var status = stat()
        guard fstat(root, &status) == 0 else {
            let code = errno
            Glibc.close(root)
            throw .system("stat staging directory", Array(stagingDirectory.utf8), errno: code)
        }
        let umask = ModePolicy.processUmask()
        // mkdir inherits setgid from its parent, so then modes are always set explicitly.
        handles = DirectoryHandles(
            root: root, umask: umask ?? 0o777, forceModes: status.st_mode & S_ISGID != 0)
        try Self.requireEmpty(root, stagingDirectory)
    }

    deinit { close() }

    /// True once the end-of-archive marker was read.
    var isAtEnd: Bool { reader.isAtEnd }
    /// Bytes after the end-of-archive marker.
    var trailingBytes: UInt64 { reader.trailingBytes }

    /// Processes one chunk of the tar stream.
    func consume(_ chunk: UnsafeRawBufferPointer) throws(ExtractionError) {
        var offset = 0
        while true {
            let rest = UnsafeRawBufferPointer(rebasing: chunk[offset...])
            let (event, consumed) = try reader.next(rest)
            switch event {
            case .needsInput: return
            case .entry(let entry): try begin(entry)
            case .data(let range): try write(UnsafeRawBufferPointer(rebasing: rest[range]))
            case .entryEnd: try endEntry()
            case .endOfArchive: break
            }
            offset += consumed
        }
    }

    /// Checks the stream ended properly and every symlink, against the complete tree, stays inside.
    func finish() throws(ExtractionError) {
        try reader.finish()
        // A symlink created later can change where an earlier one leads (`x -> a/b/../..`,
        // then `a/b -> .`), so each is resolved again now that the tree is complete.
        for link in tree.symlinks {
            guard case .symlink(let target) = tree[link] else { continue }
            let resolution = tree.resolve(target: target, of: link)
            guard resolution == .inside else {
                throw .refused(
                    .symlinkEscape, link.bytes,
                    resolution == .loops
                        ? "is a symlink loop once the whole archive is unpacked"
                        : "points outside the release once the whole archive is unpacked (through a symlink that follows it)"
                )
            }
        }
        switch durability {
        case .none: break
        case .eachFile: try syncTree()
        case .fileSystem: try syncFileSystem()
        case .automatic:
            guard deferredToSyncfs else { return try syncTree() }
            try syncer?.finish()  // the writeback of the last batch is started
            let elapsed = startedAt.duration(to: .now).components
            let seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
            let written = writtenBackAtStart.flatMap { start in writtenBack().map { $0 >= start ? $0 - start : 0 } }
            let allowance = TreeDurability.allowance(writtenBack: written, seconds: seconds)
            if TreeDurability.syncfsStillCheap(dirtyAtEnd: dirtyPageCache(), treeBytes: summary.bytes, allowance: allowance) {
                try syncFileSystem()
            } else {
                // More is dirty than the disk writes back in the budget: a syncfs would wait
                // for it. Each file again, opened by its name under the directories this
                // session holds.
                try syncEachFileAgain()
            }
        }
    }

    private func syncFileSystem() throws(ExtractionError) {
        try ArchiveExtractor.syncTree(directoryDescriptor: handles.root)
        summary.synced = .fileSystem
    }

    /// `.automatic` when a deferred `syncfs` became dear: opens every regular file of the
    /// tree again (relative to its directory, never following a symlink) and fsyncs it and
    /// the directories as `.eachFile` does.
    private func syncEachFileAgain() throws(ExtractionError) {
        let syncer = FileSyncer()
        self.syncer = syncer
        for (bytes, node) in tree.nodes where node == .file {
            handles.trim()
            let path = ArchivePath(components: ArchivePath.split(bytes))
            let parent = try handles.descriptor(for: path.parent, entry: bytes)
            let fd = withNulTerminated(path.leaf) {
                Glibc.openat(parent, $0, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
            }
            guard fd >= 0 else { throw .system("open", bytes, errno: errno) }
            syncer.sync(fd, name: bytes, bytes: 0)
        }
        try syncTree()
    }

    /// Every directory (their entries: files, links, subdirectories) and the root handed to
    /// the syncer after the files, so that their fsyncs overlap too; then waits for all of
    /// them. Nothing orders a directory's fsync after its files' beyond this: both must be
    /// done before the tree is named, which is when `finish()` returns.
    private func syncTree() throws(ExtractionError) {
        guard let syncer else { return }
        for (bytes, node) in tree.nodes where node.isDirectory && !bytes.isEmpty {
            handles.trim()
            let path = ArchivePath(components: ArchivePath.split(bytes))
            let fd = dup(try handles.descriptor(for: path, entry: bytes))
            guard fd >= 0 else { throw .system("open directory", bytes, errno: errno) }
            syncer.sync(fd, name: bytes, bytes: 0)
        }
        let root = dup(handles.root)
        guard root >= 0 else { throw .system("open staging directory", nil, errno: errno) }
        syncer.sync(root, name: nil, bytes: 0)
        try syncer.finish()
        summary.synced = .eachFile
    }


    /// Closes every descriptor. Safe to call more than once.
    func close() {
        if let file {
            Glibc.close(file.fd)
            self.file = nil
        }
        syncer?.drain()
        handles.closeAll()
    }

    // MARK: - Members

    private func begin(_ entry: TarEntry) throws(ExtractionError) {
        handles.trim()
        summary.entries += 1
        let name = entry.name
        let path = try ArchivePath.normalise(name, limits: limits, entry: name)
        try checkType(entry)

        if path.isRoot {
            // `./` as tar writes it for `tar -C dir .`: the staging directory itself, whose
            // mode the agent owns.
            guard entry.kind == .directory else {
                throw .refused(.emptyName, name, "names the release root but is not a directory")
            }
            guard tree[path] == .implicitDirectory else { throw .refused(.duplicateEntry, name, "appears twice") }
            try checkEntryCount(entry, adding: 0)
            tree.add(path, .directory)
            return
        }
        let (ancestor, node) = tree.nearestAncestor(of: path)
        guard node.isDirectory else {
            let what = node == .file ? "a regular file" : "a symlink"
            throw .refused(
                .parentNotDirectory, name,
                "has a parent '\(ExtractionError.displayName(ancestor.bytes))' that is \(what), not a directory")
        }
        let existing = tree[path]
        if let existing, !(existing == .implicitDirectory && entry.kind == .directory) {
            throw .refused(.duplicateEntry, name, "appears twice (or conflicts with an earlier entry of the same name)")
        }
        // Parents created implicitly count against the entry limit too: they are inodes all the
        // same. One that now gets its own entry is counted as that entry instead.
        if existing == .implicitDirectory { implicitDirectories -= 1 }
        try checkEntryCount(entry, adding: path.depth - 1 - ancestor.depth)
        let added = tree.addAncestors(of: path, below: ancestor.depth)
        summary.directories += added
        implicitDirectories += added

        switch entry.kind {
        case .regularFile: try createFile(entry, path)
        case .directory: try createDirectory(entry, path, exists: existing != nil)
        case .symbolicLink: try createSymlink(entry, path)
        case .hardLink: try createHardLink(entry, path)
        case .characterDevice, .blockDevice, .fifo, .unsupported: break  // refused by checkType
        }
    }

    private func checkEntryCount(_ entry: TarEntry, adding implicit: Int) throws(ExtractionError) {
        guard summary.entries + implicitDirectories + implicit <= limits.maxEntries else {
            throw ExtractionError(
                .tooManyEntries, entry: entry.displayName,
                "the archive has more than \(limits.maxEntries) entries (the limit, parent directories included); pack fewer files or raise the limit on the agent"
            )
        }
    }

    private func checkType(_ entry: TarEntry) throws(ExtractionError) {
        switch entry.kind {
        case .characterDevice, .blockDevice:
            throw .refused(.deviceEntry, entry.name, "is a device node")
        case .fifo:
            throw .refused(.fifoEntry, entry.name, "is a FIFO")
        case .unsupported(let typeflag):
            let shown = typeflag >= 0x20 && typeflag < 0x7f ? "'\(Character(Unicode.Scalar(typeflag)))'" : "\(typeflag)"
            throw .refused(.unsupportedEntry, entry.name, "has an unsupported type \(shown)\(Self.typeDescription(typeflag))")
        case .regularFile where entry.isSparse:
            throw .refused(.unsupportedEntry, entry.name, "is a GNU sparse file")
        case .regularFile:
            guard entry.size <= limits.maxFileBytes else {
                throw .refused(
                    .sizeLimitExceeded, entry.name,
                    "is \(entry.size) bytes, more than the \(limits.maxFileBytes) allowed per file")
            }
            // Subtracting, not adding: a pax size can be anything up to UInt64.max.
            guard entry.size <= limits.maxTotalBytes - min(summary.bytes, limits.maxTotalBytes) else {
                throw ExtractionError(
                    .sizeLimitExceeded, entry: entry.displayName,
                    "archive entry '\(entry.displayName)' (\(entry.size) bytes) takes the unpacked size over the \(limits.maxTotalBytes) bytes allowed; raise the limit or make the artifact smaller"
                )
            }
        case .directory, .symbolicLink, .hardLink:
            break
        }
    }

    private static func typeDescription(_ typeflag: UInt8) -> String {
        switch typeflag {
        case UInt8(ascii: "S"): return " (GNU sparse file)"
        case UInt8(ascii: "V"): return " (volume label)"
        case UInt8(ascii: "M"): return " (multi-volume continuation)"
        case UInt8(ascii: "D"): return " (GNU dump directory)"
        case UInt8(ascii: "X"): return " (Solaris extended header)"
        default: return ""
        }
    }

    private func createFile(_ entry: TarEntry, _ path: ArchivePath) throws(ExtractionError) {
        let parent = try handles.descriptor(for: path.parent, entry: entry.name)
        let mode = ModePolicy.file(entry.mode)
        let fd = withNulTerminated(path.leaf) {
            Glibc.openat(parent, $0, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        }
        guard fd >= 0 else { throw creationError("create file", entry.name, errno) }
        file = OpenFile(fd: fd, name: entry.name, mode: mode, modificationTime: entry.modificationTime, bytes: entry.size)
        tree.add(path, .file)
        summary.files += 1
    }

    private func write(_ data: UnsafeRawBufferPointer) throws(ExtractionError) {
        guard let file, var next = data.baseAddress else { return }
        var remaining = data.count
        while remaining > 0 {
            let written = Glibc.write(file.fd, next, remaining)
            if written < 0 {
                if errno == EINTR { continue }
                throw .system("write", file.name, errno: errno)
            }
            guard written > 0 else { throw .system("write", file.name, errno: EIO) }
            next += written
            remaining -= written
        }
        summary.bytes += UInt64(data.count)
    }

    private func endEntry() throws(ExtractionError) {
        guard let file else { return }
        self.file = nil
        var awaitsSync = false
        defer { if !awaitsSync { Glibc.close(file.fd) } }
        if handles.needsExplicitMode(file.mode), fchmod(file.fd, file.mode) != 0 {
            throw .system("set mode of", file.name, errno: errno)
        }
        // atime is left alone; mtime is the archive's, so builds are reproducible on disk.
        let utimeOmit = (1 << 30) - 2
        var times = (
            timespec(tv_sec: 0, tv_nsec: utimeOmit),
            timespec(tv_sec: Int(clamping: file.modificationTime), tv_nsec: 0)
        )
        let status = withUnsafePointer(to: &times) {
            $0.withMemoryRebound(to: timespec.self, capacity: 2) { futimens(file.fd, $0) }
        }
        // Some file systems refuse far-off times; the content is what matters.
        if status != 0, errno != EINVAL, errno != EOVERFLOW {
            throw .system("set mtime of", file.name, errno: errno)
        }
        guard let syncer else { return }
        syncer.sync(file.fd, name: file.name, bytes: file.bytes)
        awaitsSync = true
    }

    private func createDirectory(_ entry: TarEntry, _ path: ArchivePath, exists: Bool) throws(ExtractionError) {
        let mode = ModePolicy.directory(entry.mode)
        tree.add(path, .directory)
        if !exists {
            let parent = try handles.descriptor(for: path.parent, entry: entry.name)
            guard DirectoryHandles.makeDirectory(parent, path.leaf, mode: mode) == 0 else {
                throw creationError("create directory", entry.name, errno)
            }
            summary.directories += 1
            guard handles.needsExplicitMode(mode) else { return }
        }
        // Created earlier as a parent (mode 0755), or the umask took bits away.
        let fd = try handles.descriptor(for: path, entry: entry.name)
        guard fchmod(fd, mode) == 0 else { throw .system("set mode of", entry.name, errno: errno) }
    }

    private func createSymlink(_ entry: TarEntry, _ path: ArchivePath) throws(ExtractionError) {
        let target = entry.linkName
        guard !target.contains(0) else { throw .refused(.nulInName, entry.name, "has a NUL byte in its link target") }
        guard !target.isEmpty else { throw .refused(.symlinkEscape, entry.name, "is a symlink with an empty target") }
        let shown = ExtractionError.displayName(target)
        guard target.first != ArchivePath.slash else {
            throw .refused(.symlinkAbsolute, entry.name, "is a symlink to the absolute path '\(shown)'")
        }
        guard target.count <= limits.maxNameLength else {
            throw .refused(
                .nameTooLong, entry.name,
                "has a link target of \(target.count) bytes, more than the \(limits.maxNameLength) allowed")
        }
        switch tree.resolve(target: target, of: path) {
        case .inside: break
        case .escapes:
            throw .refused(.symlinkEscape, entry.name, "is a symlink to '\(shown)', which points outside the release")
        case .loops:
            throw .refused(.symlinkEscape, entry.name, "is a symlink to '\(shown)', which loops")
        }
        let parent = try handles.descriptor(for: path.parent, entry: entry.name)
        let status = withNulTerminated(target) { target in withNulTerminated(path.leaf) { symlinkat(target, parent, $0) } }
        guard status == 0 else { throw creationError("create symlink", entry.name, errno) }
        tree.add(path, .symlink(target: target))
        summary.symlinks += 1
    }

    private func createHardLink(_ entry: TarEntry, _ path: ArchivePath) throws(ExtractionError) {
        let target = try ArchivePath.normalise(
            entry.linkName, limits: limits, entry: entry.name, what: "link target", code: .hardlinkInvalid)
        guard !target.isRoot, tree[target] == .file else {
            throw .refused(
                .hardlinkInvalid, entry.name,
                "is a hard link to '\(ExtractionError.displayName(entry.linkName))', which is not an earlier regular file of this archive"
            )
        }
        let from = try handles.descriptor(for: target.parent, entry: entry.name)
        let to = try handles.descriptor(for: path.parent, entry: entry.name)
        // No AT_SYMLINK_FOLLOW: the target is the file itself, never something it points to.
        let status = withNulTerminated(target.leaf) { source in withNulTerminated(path.leaf) { linkat(from, source, to, $0, 0) } }
        guard status == 0 else { throw creationError("create hard link", entry.name, errno) }
        tree.add(path, .file)
        summary.hardLinks += 1
    }

    /// Errors of openat/mkdirat/symlinkat/linkat. The tree already refused duplicates and
    /// parents that are not directories; the kernel's O_EXCL and O_NOFOLLOW are the second line.
    private func creationError(_ operation: String, _ name: [UInt8], _ code: Int32) -> ExtractionError {
        switch code {
        case EEXIST: return .refused(.duplicateEntry, name, "already exists in the staging directory")
        case ENOTDIR, ELOOP: return .refused(.parentNotDirectory, name, "has a parent that is a symlink or not a directory")
        default: return .system(operation, name, errno: code)
        }
    }

    // MARK: - Staging directory

    private static func requireEmpty(_ root: Int32, _ path: String) throws(ExtractionError) {
        let copy = dup(root)
        guard copy >= 0, let directory = fdopendir(copy) else {
            let code = errno
            if copy >= 0 { Glibc.close(copy) }
            throw .system("list staging directory", Array(path.utf8), errno: code)
        }
        defer { closedir(directory) }
        while let item = readdir(directory) {
            let name = withUnsafeBytes(of: item.pointee.d_name) { raw in
                Array(raw.prefix { $0 != 0 })
            }
            if name != [ArchivePath.dot], name != [ArchivePath.dot, ArchivePath.dot] {
                throw ExtractionError(
                    .stagingNotEmpty,
                    "the staging directory \(path) is not empty (it holds '\(ExtractionError.displayName(name))'); extraction needs a fresh, empty directory"
                )
            }
        }
    }
}
