import Foundation
import NIOCore
import NIOPosix

/// A file read in chunks off the cooperative pool, as a request body: an artifact is
/// streamed from disk to each agent, never held in memory whole.
///
/// Each read runs on NIO's thread pool (a fixed set of threads), never on the
/// cooperative pool or Dispatch's. The HTTP client stops pulling chunks only once the
/// connection reports itself unwritable, and it hands each chunk to the connection's event
/// loop without waiting for it; with busy event loops (many uploads, TLS on two cores) the
/// reader ran ahead and queued megabytes per upload. So before each further chunk the
/// iterator makes one round trip through every event loop of `pacing` (the client's
/// group): the previous chunk's write has then reached its connection, and a full
/// connection has paused the stream. An upload so holds about one 64 KiB chunk (the
/// connection's write-buffer high-water mark) and its TLS records at a time: controller
/// memory grows by that per concurrent upload, not by the artifact.
struct FileChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let path: String
    let chunkSize: Int
    let pacing: (any EventLoopGroup)?
    /// NIO's default high-water mark for a channel's pending writes.
    static let defaultChunkSize = 64 * 1024

    /// `pacing`: the event loops the chunks are written on (nil: no pacing).
    init(path: String, chunkSize: Int = Self.defaultChunkSize, pacing: (any EventLoopGroup)? = nil) {
        self.path = path
        self.chunkSize = chunkSize
        self.pacing = pacing
    }

    func makeAsyncIterator() -> Iterator {
        Iterator(path: path, chunkSize: chunkSize, loops: pacing.map { Array($0.makeIterator()) } ?? [])
    }

    final class Iterator: AsyncIteratorProtocol, @unchecked Sendable {
        // Used by one request body at a time (AsyncHTTPClient pulls sequentially).
        private let path: String
        private let chunkSize: Int
        private let loops: [any EventLoop]
        private var fd: Int32 = -1
        private var offset: off_t = 0
        private var finished = false

        init(path: String, chunkSize: Int, loops: [any EventLoop]) {
            self.path = path
            self.chunkSize = chunkSize
            self.loops = loops
        }

        deinit { if fd >= 0 { close(fd) } }

        func next() async throws -> ByteBuffer? {
            if finished { return nil }
            if fd < 0 {
                fd = open(path, O_RDONLY | O_CLOEXEC)
                guard fd >= 0 else { throw IOError(errnoCode: errno, reason: "open \(path)") }
            }
            if self.offset > 0 {
                // Tasks on a loop run in order: the previous chunk's write is done after this.
                for loop in loops { try await loop.submit {}.get() }
            }
            let fd = self.fd, offset = self.offset, size = chunkSize
            let buffer = try await NIOThreadPool.singleton.runIfActive { () throws -> ByteBuffer in
                var buffer = ByteBufferAllocator().buffer(capacity: size)
                let count = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { raw -> Int in
                    while true {
                        let n = pread(fd, raw.baseAddress!, size, offset)
                        if n < 0, errno == EINTR { continue }
                        if n < 0 { throw IOError(errnoCode: errno, reason: "read") }
                        return n
                    }
                }
                _ = count
                return buffer
            }
            if buffer.readableBytes == 0 {
                finished = true
                close(fd)
                self.fd = -1
                return nil
            }
            self.offset += off_t(buffer.readableBytes)
            return buffer
        }
    }
}
