#if canImport(Glibc)
import Glibc
#endif

/// Where one output stream of a hook goes: an anonymous temporary file, not a pipe.
///
/// An `activate` hook typically starts a long-running service in the background, which
/// inherits the hook's stdout and stderr. With a pipe we would wait for an EOF that only
/// comes when the service dies, or, closing our end, kill the service with SIGPIPE on
/// its next write. With a file the hook is done when its main process exits, and
/// whatever keeps writing afterwards blocks nobody.
struct CaptureFile: ~Copyable {
    /// Our descriptor (O_CLOEXEC); the child gets its own copy through dup2.
    let descriptor: Int32
    /// Why output is not kept, when the file could not be created.
    let problem: String?

    /// Creates the file in `directory` and unlinks it at once, so nothing is left behind
    /// whatever happens to the agent. When that fails (disk full, directory missing) the
    /// output goes to /dev/null: a hook that must run, such as re-activating the
    /// previous release in a rollback, still runs.
    init(in directory: String) {
        // mkostemp by hand (Swift's Glibc module does not declare it): O_CLOEXEC from the
        // start, so no process spawned meanwhile by another thread inherits it.
        var fd: Int32 = -1
        for _ in 0..<16 {
            let path = "\(directory)/.baton-hook-output.\(UInt64.random(in: 0...UInt64.max))"
            fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            if fd >= 0 { unlink(path) }
            if fd >= 0 || errno != EEXIST { break }
        }
        if fd >= 0 {
            descriptor = fd
            problem = nil
        } else {
            problem = "output not kept: cannot create a file in \(directory): \(String(cString: strerror(errno)))"
            descriptor = open("/dev/null", O_WRONLY | O_CLOEXEC)
        }
    }

    deinit { if descriptor >= 0 { close(descriptor) } }

    /// The last `limit` bytes written so far, decoded as UTF-8 (invalid sequences
    /// replaced). Reads from the end: the hook may have written gigabytes.
    func tail(limit: Int) -> String {
        guard limit > 0, problem == nil else { return "" }
        var info = stat()
        guard fstat(descriptor, &info) == 0, info.st_size > 0 else { return "" }
        // Up to what was written at this instant: a background process that keeps
        // writing afterwards is not waited for.
        let size = Int(info.st_size)
        let start = max(0, size - limit)
        var bytes = [UInt8](repeating: 0, count: size - start)
        var filled = 0
        while filled < bytes.count {
            let count = bytes.withUnsafeMutableBytes {
                pread(descriptor, $0.baseAddress! + filled, $0.count - filled, off_t(start + filled))
            }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            filled += count
        }
        var text = bytes[..<filled]
        // A cut in the middle of a multi-byte character would decode as U+FFFD: drop
        // its leading continuation bytes instead.
        if start > 0 {
            var dropped = 0
            while dropped < 3, let first = text.first, first & 0xC0 == 0x80 {
                text = text.dropFirst()
                dropped += 1
            }
        }
        return String(decoding: text, as: UTF8.self)
    }
}
