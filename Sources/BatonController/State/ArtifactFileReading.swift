import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads an artifact file once, in large pieces through one reused buffer, handing each
/// piece to `body`: what hashing and storing an artifact share.
///
/// Why not `FileHandle.read(upToCount:)`: each call allocates a fresh `Data`, and a
/// megabyte allocation is a fresh mapping whose pages fault in one by one. For a 16 MB
/// artifact that was as much CPU as hashing it, on the serial path before a deploy's
/// first upload.
enum ArtifactFileReading {
    static let pieceSize = 1 << 20

    enum Failure: Error {
        case cannotOpen(Int32)
        case read(Int32)
        case consumer(any Error)
    }

    /// Calls `body` with each piece of `path`'s bytes, in order; returns how many there were.
    @discardableResult
    static func forEachPiece(of path: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws(Failure) -> UInt64 {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .cannotOpen(errno) }
        defer { close(fd) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: pieceSize, alignment: 4096)
        defer { buffer.deallocate() }
        var total: UInt64 = 0
        while true {
            let count = read(fd, buffer.baseAddress, pieceSize)
            if count < 0 {
                if errno == EINTR { continue }
                throw .read(errno)
            }
            if count == 0 { return total }
            do { try body(UnsafeRawBufferPointer(rebasing: buffer[0..<count])) } catch { throw .consumer(error) }
            total += UInt64(count)
        }
    }

    /// Writes all of `bytes` to `fd`, through short writes and interruptions.
    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws(Failure) {
        var offset = 0
        while offset < bytes.count {
            let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw .consumer(POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO))
            }
            offset += written
        }
    }

    static func describe(_ code: Int32) -> String { String(cString: strerror(code)) }
}
