#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Reading and writing the PEM files of the PKI: certificates, keys, CSRs.
///
/// Writes go to a temporary file in the target's directory that is then linked into
/// place, so a reader never sees half a file, an existing file is never replaced, and a
/// private key is created with mode 0600: it is never readable by others, not even briefly.
public enum PEMFile {
    /// What a file holds, which decides its mode.
    public enum Kind: Sendable {
        /// A private key: mode 0600.
        case privateKey
        /// A certificate or CSR: mode 0644.
        case publicMaterial

        var mode: mode_t {
            switch self {
            case .privateKey: 0o600
            case .publicMaterial: 0o644
            }
        }
    }

    /// PEM files are small; anything larger is not one of ours.
    static let maximumSize = 1 << 20

    /// Reads a text file; `what` names it in errors ("CA certificate", "CSR").
    public static func read(_ path: String, what: String) throws(PKIError) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT { throw PKIError(.fileNotFound, "\(what) '\(path)' does not exist") }
            throw PKIError(.ioError, "cannot read \(what) '\(path)': \(describe(code))")
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            let n = buffer.withUnsafeMutableBytes { systemRead(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw PKIError(.ioError, "cannot read \(what) '\(path)': \(describe(errno))")
            }
            if n == 0 { break }
            bytes += buffer[..<n]
            guard bytes.count <= maximumSize else {
                throw PKIError(.badPEM, "\(what) '\(path)' is over \(maximumSize / 1024) KiB; it is not a PEM file")
            }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw PKIError(.badPEM, "\(what) '\(path)' is not text; PEM expected")
        }
        return text
    }

    /// Writes `text` to `path`, refusing with `file_exists` if `path` exists.
    public static func write(_ text: String, to path: String, kind: Kind) throws(PKIError) {
        let directory = parentDirectory(of: path)
        let temporary = "\(directory)/.\(baseName(of: path)).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        // O_EXCL: never follow or reuse something already there. The mode is set at creation.
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, kind.mode)
        guard fd >= 0 else {
            throw PKIError(.ioError, "cannot write '\(path)': \(describe(errno))")
        }
        var failure: Int32 = 0
        // Certificates are meant to be read by everyone; undo a restrictive umask. Keys keep
        // the 0600 they were created with (a umask can only have narrowed it).
        if kind == .publicMaterial, fchmod(fd, kind.mode) != 0 { failure = errno }
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count, failure == 0 {
            let n = bytes.withUnsafeBytes { systemWrite(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 {
                if errno != EINTR { failure = errno }
            } else {
                offset += n
            }
        }
        if failure == 0, fsync(fd) != 0 { failure = errno }
        close(fd)
        guard failure == 0 else {
            unlink(temporary)
            throw PKIError(.ioError, "cannot write '\(path)': \(describe(failure))")
        }
        // link(2) fails with EEXIST instead of replacing, which rename(2) would do silently.
        if link(temporary, path) != 0 {
            let code = errno
            unlink(temporary)
            if code == EEXIST {
                throw PKIError(.fileExists, "'\(path)' already exists; Baton never overwrites keys or certificates: move it away first")
            }
            throw PKIError(.ioError, "cannot write '\(path)': \(describe(code))")
        }
        unlink(temporary)
        syncDirectory(directory)
    }

    /// Writes a private key and its certificate or CSR, or neither: refuses with
    /// `file_exists` before writing anything if either path exists, and takes the key back
    /// out if the second file cannot be written. Creates `directory` (0700) if missing.
    static func writeKeyPair(key: String, to keyPath: String, publicMaterial: String, to publicPath: String) throws(PKIError) {
        for path in [publicPath, keyPath] where exists(path) {
            throw PKIError(.fileExists, "'\(path)' already exists; Baton never overwrites keys or certificates: move it away first")
        }
        try makeDirectory(parentDirectory(of: keyPath))
        // The key first: a certificate or CSR without its key is useless, the reverse is not.
        try write(key, to: keyPath, kind: .privateKey)
        do {
            try write(publicMaterial, to: publicPath, kind: .publicMaterial)
        } catch {
            unlink(keyPath)
            throw error
        }
    }

    /// True if something exists at `path` (a dangling symlink counts).
    public static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    /// Creates `path` and any missing parents with mode 0700, unless it is already a
    /// directory. Parents too: `baton pki init pki/ca` in an empty directory is what an
    /// operator types first. Every directory made here is on the way to a private key, so
    /// none is opened to others; directories that already exist keep their modes.
    static func makeDirectory(_ path: String) throws(PKIError) {
        var trimmed = path
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed.removeLast() }
        var info = stat()
        if stat(trimmed, &info) == 0 {
            guard (info.st_mode & S_IFMT) == S_IFDIR else {
                throw PKIError(.ioError, "'\(trimmed)' exists and is not a directory; choose another path")
            }
            return
        }
        let parent = parentDirectory(of: trimmed)
        if parent != trimmed, parent != ".", parent != "/" { try makeDirectory(parent) }
        // EEXIST: another process made it in between, which is as good.
        guard mkdir(trimmed, 0o700) == 0 || (errno == EEXIST && stat(trimmed, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR) else {
            throw PKIError(.ioError, "cannot create directory '\(trimmed)': \(describe(errno)); create it yourself or choose another path")
        }
    }

    /// Makes the new directory entry durable, so a crash right after cannot lose the file.
    private static func syncDirectory(_ directory: String) {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }

    static func parentDirectory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    static func baseName(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    static func describe(_ code: Int32) -> String {
        String(cString: strerror(code))
    }
}

// read(2) and write(2): inside `PEMFile` those names mean its own static methods.
@inline(__always)
private func systemRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
    read(fd, buffer, count)
}

@inline(__always)
private func systemWrite(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int) -> Int {
    write(fd, buffer, count)
}
