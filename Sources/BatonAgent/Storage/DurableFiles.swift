#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The few file-system operations that make a host crash-safe, each done the one way
/// that survives `kill -9` and power loss: write a temporary file, fsync it, rename it
/// over the target, fsync the directory.
enum DurableFiles {
    /// Mode of the agent's own files (records, app state, approved manifests, artifacts,
    /// the audit log): they hold hook output and what the host runs, which is nobody
    /// else's business, and the agent may run without systemd's `UMask=0077`.
    static let privateFileMode: mode_t = 0o600
    /// Mode of the data directory and of everything under `state/` and `artifacts/`.
    static let privateDirectoryMode: mode_t = 0o700

    /// Writes `data` to `path` atomically and durably, with exactly `mode` whatever the
    /// process umask.
    static func write(_ data: Data, to path: String, mode: mode_t = privateFileMode) throws(AgentError) {
        let directory = PathName.directory(of: path)
        let temporary = "\(directory)/.\(PathName.lastComponent(of: path)).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw AgentError.io("create \(temporary)") }
        var ok = fchmod(fd, mode) == 0
        ok = ok && data.withUnsafeBytes { writeAll(fd, $0) }
        ok = ok && fsync(fd) == 0
        let savedErrno = errno
        close(fd)
        guard ok else {
            unlink(temporary)
            errno = savedErrno
            throw AgentError.io("write \(path)")
        }
        guard rename(temporary, path) == 0 else {
            let e = errno
            unlink(temporary)
            errno = e
            throw AgentError.io("rename into \(path)")
        }
        try syncDirectory(directory)
    }

    /// fsync of a directory: makes the names in it (renames, new entries) durable.
    static func syncDirectory(_ path: String) throws(AgentError) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw AgentError.io("open directory \(path)") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw AgentError.io("fsync directory \(path)") }
    }

    /// Points the symlink `link` at `target` atomically: a new symlink under a temporary
    /// name is renamed over the old one, so at every instant `link` names a complete
    /// target (docs/design.md §5). The directory is fsynced afterwards.
    static func replaceSymlink(_ link: String, target: String) throws(AgentError) {
        let directory = PathName.directory(of: link)
        let temporary = "\(directory)/.\(PathName.lastComponent(of: link)).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        guard symlink(target, temporary) == 0 else { throw AgentError.io("symlink \(temporary)") }
        guard rename(temporary, link) == 0 else {
            let e = errno
            unlink(temporary)
            errno = e
            throw AgentError.io("rename over \(link)")
        }
        try syncDirectory(directory)
    }

    /// Removes a symlink durably, if it exists.
    static func removeSymlink(_ link: String) throws(AgentError) {
        if unlink(link) != 0 && errno != ENOENT { throw AgentError.io("unlink \(link)") }
        try syncDirectory(PathName.directory(of: link))
    }

    /// The target of a symlink, or nil if there is none.
    static func readSymlink(_ link: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4097)
        let n = readlink(link, &buffer, 4096)
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Creates `path` and any missing parents, each new one with exactly `mode` (set
    /// with chmod after mkdir, so a permissive umask cannot widen it and a strict one
    /// cannot lock the agent out). Directories that exist are left as they are.
    static func makeDirectory(_ path: String, mode: mode_t = privateDirectoryMode) throws(AgentError) {
        guard !isDirectory(path) else { return }
        let parent = PathName.directory(of: path)
        if !parent.isEmpty, parent != path, parent != "/", !isDirectory(parent) {
            try makeDirectory(parent, mode: mode)
        }
        if mkdir(path, mode) != 0 {
            let e = errno
            if e == EEXIST, isDirectory(path) { return }
            throw AgentError.io("create directory \(path)", errno: e)
        }
        guard chmod(path, mode) == 0 else { throw AgentError.io("set the mode of \(path)") }
    }

    /// Removes group and other permissions from an existing directory. Returns the mode
    /// it had when that changed something, so the caller can say so; nil when it was
    /// already private or does not exist.
    static func tightenDirectory(_ path: String, to mode: mode_t = privateDirectoryMode) throws(AgentError) -> mode_t? {
        var st = stat()
        guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else { return nil }
        let current = st.st_mode & 0o7777
        guard current & ~mode != 0 else { return nil }
        guard chmod(path, current & mode) == 0 else { throw AgentError.io("tighten the mode of \(path)") }
        return current
    }

    /// Removes a tree, making unwritable directories writable first (a release may hold
    /// read-only directories). Missing is fine.
    static func removeTree(_ path: String) {
        guard FileManager.default.fileExists(atPath: path) || readSymlink(path) != nil else { return }
        if (try? FileManager.default.removeItem(atPath: path)) != nil { return }
        if let subpaths = try? FileManager.default.subpathsOfDirectory(atPath: path) {
            chmod(path, 0o700)
            for relative in subpaths {
                let full = "\(path)/\(relative)"
                var st = stat()
                if lstat(full, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR { chmod(full, 0o700) }
            }
        }
        try? FileManager.default.removeItem(atPath: path)
    }

    static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    static func writeAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset < buffer.count {
            let n = systemWrite(fd, buffer.baseAddress! + offset, buffer.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += n
        }
        return true
    }
}

/// write(2), named apart from `DurableFiles.write`.
private func systemWrite(_ fd: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    Glibc.write(fd, bytes, count)
    #else
    Musl.write(fd, bytes, count)
    #endif
}
