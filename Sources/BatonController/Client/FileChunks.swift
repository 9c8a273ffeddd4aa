import Foundation
import NIOCore
import NIOPosix

/// A file read in chunks off the cooperative pool, as a request body: an artifact is
/// streamed from disk to each agent, never held in memory whole.
struct FileChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let path: String
    let chunkSize: Int

    init(path: String, chunkSize: Int = 256 * 1024) {
        self.path = path
        self.chunkSize = chunkSize
    }

    func makeAsyncIterator() -> Iterator { Iterator(path: path, chunkSize: chunkSize) }

    final class Iterator: AsyncIteratorProtocol, @unchecked Sendable {
        // Used by one request body at a time (AsyncHTTPClient pulls sequentially).
        private let path: String
        private let chunkSize: Int
        private var fd: Int32 = -1
        private var offset: off_t = 0
        private var finished = false

        init(path: String, chunkSize: Int) {
            self.path = path
            self.chunkSize = chunkSize
        }

        deinit { if fd >= 0 { close(fd) } }

        func next() async throws -> ByteBuffer? {
            if finished { return nil }
            if fd < 0 {
                fd = open(path, O_RDONLY | O_CLOEXEC)
                guard fd >= 0 else { throw IOError(errnoCode: errno, reason: "open \(path)") }
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
