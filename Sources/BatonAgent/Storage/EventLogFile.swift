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

/// An append-only file of lines. A line is complete when its newline is written; a crash
/// in the middle of an append leaves a last line without one, which readers ignore and
/// the next append cuts off first, so a torn line never runs into the next one.
enum EventLogFile {
    /// The complete lines of `data` (each without its newline), and whether a torn last
    /// line followed them.
    static func lines(_ data: Data) -> (lines: [Data], torn: Bool) {
        var lines: [Data] = []
        var start = data.startIndex
        while let newline = data[start...].firstIndex(of: 0x0A) {
            lines.append(Data(data[start..<newline]))
            start = newline + 1
        }
        return (lines, start < data.endIndex)
    }

    /// Appends `line` and its newline with one write(2), after cutting off a torn last
    /// line. Not fsynced: what needs to survive power loss is never only in such a file
    /// (docs/durability.md).
    static func append(_ line: Data, to path: String) throws(AgentError) {
        let fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, DurableFiles.privateFileMode)
        guard fd >= 0 else { throw AgentError.io("open \(path)") }
        defer { close(fd) }
        try cutTornLine(fd, path: path)
        var bytes = line
        bytes.append(0x0A)
        guard bytes.withUnsafeBytes({ DurableFiles.writeAll(fd, $0) }) else { throw AgentError.io("append to \(path)") }
    }

    /// Truncates the file after its last newline when it does not end with one.
    private static func cutTornLine(_ fd: Int32, path: String) throws(AgentError) {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw AgentError.io("stat \(path)") }
        let size = Int(st.st_size)
        guard size > 0 else { return }
        var last: UInt8 = 0
        guard pread(fd, &last, 1, off_t(size - 1)) == 1 else { throw AgentError.io("read \(path)") }
        guard last != 0x0A else { return }
        // Rare (only after a crash): read the whole file to find the last complete line.
        var buffer = [UInt8](repeating: 0, count: size)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, size, 0) }
        guard n == size else { throw AgentError.io("read \(path)") }
        let keep = (buffer.lastIndex(of: 0x0A).map { $0 + 1 }) ?? 0
        guard ftruncate(fd, off_t(keep)) == 0 else { throw AgentError.io("cut the torn last line of \(path)") }
    }
}
