import Glibc

/// Open descriptors of the directories of the staging tree, each opened relative to its
/// parent with `O_NOFOLLOW | O_DIRECTORY`, so no lookup ever follows a symlink or leaves
/// the staging directory. Missing directories are created on the way (mode 0755).
///
/// Archives list members directory by directory, so a small cache hits almost always;
/// when it grows past `capacity` it is emptied at the next `trim()` (between members, so a
/// descriptor handed out for the current member is never closed under it).
final class DirectoryHandles {
    let root: Int32
    private var open: [[UInt8]: Int32] = [:]
    private let capacity: Int
    private let umask: mode_t
    private let forceModes: Bool
    private var rootClosed = false

    /// Takes ownership of `root`. `umask` is the process umask (mkdirat applies it);
    /// `forceModes` says to set modes explicitly anyway (the root has setgid, which mkdir inherits).
    init(root: Int32, umask: mode_t, forceModes: Bool, capacity: Int = 256) {
        self.root = root
        self.umask = umask
        self.forceModes = forceModes
        self.capacity = capacity
    }

    deinit { closeAll() }

    /// The descriptor of directory `path`, opening (and creating) it and its parents as needed.
    /// `entry` is the member being extracted, for messages.
    func descriptor(for path: ArchivePath, entry: [UInt8]) throws(ExtractionError) -> Int32 {
        guard !path.isRoot else { return root }
        let key = path.bytes
        if let fd = open[key] { return fd }
        let leaf = path.leaf
        let parent = try descriptor(for: path.parent, entry: entry)
        var fd = Self.openDirectory(parent, leaf)
        if fd < 0, errno == ENOENT {
            guard Self.makeDirectory(parent, leaf, mode: 0o755) == 0 || errno == EEXIST else {
                throw .system("create directory", key, errno: errno)
            }
            fd = Self.openDirectory(parent, leaf)
            if fd >= 0, needsExplicitMode(0o755) { _ = fchmod(fd, 0o755) }
        }
        guard fd >= 0 else {
            let code = errno
            if code == ENOTDIR || code == ELOOP {
                throw .refused(
                    .parentNotDirectory, entry,
                    "has a parent '\(ExtractionError.displayName(key))' that is a symlink or not a directory")
            }
            throw .system("open directory", key, errno: code)
        }
        open[key] = fd
        return fd
    }

    /// Whether mkdirat or openat with `mode` may not produce exactly `mode`, so fchmod is needed.
    func needsExplicitMode(_ mode: mode_t) -> Bool { forceModes || mode & umask != 0 }

    /// Empties the cache when it is over capacity.
    func trim() {
        if open.count > capacity { closeCached() }
    }

    /// Closes every descriptor, the root included.
    func closeAll() {
        closeCached()
        if !rootClosed {
            _ = Glibc.close(root)
            rootClosed = true
        }
    }

    private func closeCached() {
        for fd in open.values { _ = Glibc.close(fd) }
        open.removeAll(keepingCapacity: true)
    }

    static func openDirectory(_ parent: Int32, _ name: [UInt8]) -> Int32 {
        withNulTerminated(name) { Glibc.openat(parent, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
    }

    static func makeDirectory(_ parent: Int32, _ name: [UInt8], mode: mode_t) -> Int32 {
        withNulTerminated(name) { mkdirat(parent, $0, mode) }
    }
}

/// Calls `body` with `bytes` as a NUL-terminated C string (names never contain NUL: the policy refuses them).
func withNulTerminated<R>(_ bytes: [UInt8], _ body: (UnsafePointer<CChar>) -> R) -> R {
    var terminated = bytes
    terminated.append(0)
    return terminated.withUnsafeBufferPointer { buffer in
        buffer.withMemoryRebound(to: CChar.self) { body($0.baseAddress!) }
    }
}
