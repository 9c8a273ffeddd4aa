import Glibc

/// Permission bits the extraction gives what it creates, whatever the archive says. At least
/// as strict as Python's tarfile `data` filter; owners are never applied.
enum ModePolicy {
    /// Regular files: no setuid, setgid or sticky bit, no group/other write, execute for
    /// group/other only when the owner has it, and always owner read and write.
    static func file(_ stored: UInt32) -> mode_t {
        var mode = stored & 0o777 & ~0o022
        if mode & 0o100 == 0 { mode &= ~0o011 }
        return mode_t(mode | 0o600)
    }

    /// Directories: no special bits, no group/other write, and always owner rwx, so a
    /// read-only directory in the archive cannot stop members that follow from being written
    /// into it (which is why its mode can be set at once rather than at the end).
    static func directory(_ stored: UInt32) -> mode_t {
        mode_t(stored & 0o755 | 0o700)
    }

    /// The process umask from /proc/self/status (reading it with umask(2) would change it,
    /// racing other threads). `nil` when unknown: then every mode is set explicitly.
    static func processUmask() -> mode_t? {
        let fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        let text = String(decoding: buffer[0..<count], as: UTF8.self)
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Umask:") }) else { return nil }
        guard let value = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).last else { return nil }
        return mode_t(value, radix: 8)
    }
}
