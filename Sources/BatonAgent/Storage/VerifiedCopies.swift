import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The cached copies this agent hashed since it started, each with the identity its file
/// had then (device, inode, size, modification and change times).
///
/// Why a deployment may skip hashing such a copy again: the cache is not fsynced
/// (`ArtifactCache`), and the one way its bytes can differ from what was hashed without
/// anyone writing to the file is a power loss or a kernel crash, which ends this process
/// and so empties this table. Any write to the file, or a file put in its place, changes
/// its change time or its inode, and then the copy is hashed again. Kept in memory only:
/// an agent that starts (after a crash or not) hashes every copy at its first use.
///
/// The times come from the kernel's coarse clock, so a write within the same few
/// milliseconds as the recording could keep them; the file is the agent's own, in a
/// directory only it may write, and what this guards against is the torn copy, which no
/// running agent can see.
final class VerifiedCopies: Sendable {
    struct Identity: Equatable, Sendable {
        let device: UInt64, inode: UInt64, size: Int64
        let modified: timespec, changed: timespec

        init(_ st: stat) {
            device = UInt64(st.st_dev)
            inode = UInt64(st.st_ino)
            size = Int64(st.st_size)
            modified = st.st_mtim
            changed = st.st_ctim
        }

        static func == (a: Identity, b: Identity) -> Bool {
            a.device == b.device && a.inode == b.inode && a.size == b.size
                && a.modified.tv_sec == b.modified.tv_sec && a.modified.tv_nsec == b.modified.tv_nsec
                && a.changed.tv_sec == b.changed.tv_sec && a.changed.tv_nsec == b.changed.tv_nsec
        }
    }

    private let copies = Mutex<[String: Identity]>([:])

    /// Records that the file open as `fd`, kept under `digest`, hashes to it.
    func record(_ digest: String, fd: Int32) {
        var st = stat()
        guard fstat(fd, &st) == 0 else { return forget(digest) }
        copies.withLock { $0[digest] = Identity(st) }
    }

    /// Records the file at `path` again after the agent itself changed its times
    /// (`ArtifactCache.touch`), if it was recorded with `before`.
    func renew(_ digest: String, path: String, before: Identity) {
        var st = stat()
        guard stat(path, &st) == 0 else { return forget(digest) }
        copies.withLock {
            guard $0[digest] == before else { return }
            let now = Identity(st)
            if now.device == before.device && now.inode == before.inode && now.size == before.size {
                $0[digest] = now
            } else {
                $0[digest] = nil
            }
        }
    }

    /// True when the file with status `st` is the very copy this agent hashed under `digest`.
    func isVerified(_ digest: String, _ st: stat) -> Bool {
        copies.withLock { $0[digest] } == Identity(st)
    }

    /// The identity recorded for `digest`, if any.
    func identity(_ digest: String) -> Identity? { copies.withLock { $0[digest] } }

    func forget(_ digest: String) { _ = copies.withLock { $0.removeValue(forKey: digest) } }
}
