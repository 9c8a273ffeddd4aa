@testable import BatonController
import Foundation
import NIOCore
import NIOPosix
import Testing

/// The artifact body the controller streams to each agent: the file's bytes exactly, in
/// order, never more than a chunk at a time, paced through the event loops or not.
@Suite struct FileChunksTests {
    static func chunks(of bytes: [UInt8], chunkSize: Int, pacing: (any EventLoopGroup)?) async throws -> [[UInt8]] {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("filechunks-\(UUID().uuidString)").path
        #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        defer { try? FileManager.default.removeItem(atPath: path) }
        var out: [[UInt8]] = []
        for try await chunk in FileChunks(path: path, chunkSize: chunkSize, pacing: pacing) {
            out.append(Array(chunk.readableBytesView))
        }
        return out
    }

    @Test("the file's bytes in order, in chunks of at most the chunk size", arguments: [false, true])
    func bytesInOrder(paced: Bool) async throws {
        let bytes = (0..<(3 * 65_536 + 1_234)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let chunks = try await Self.chunks(
            of: bytes, chunkSize: 65_536, pacing: paced ? MultiThreadedEventLoopGroup.singleton : nil)
        #expect(chunks.map(\.count) == [65_536, 65_536, 65_536, 1_234])
        #expect(Array(chunks.joined()) == bytes)
    }

    @Test("an empty file is an empty body")
    func emptyFile() async throws {
        #expect(try await Self.chunks(of: [], chunkSize: 1_024, pacing: MultiThreadedEventLoopGroup.singleton).isEmpty)
    }

    @Test("the default chunk is NIO's write-buffer high-water mark, 64 KiB")
    func defaultChunk() {
        #expect(FileChunks.defaultChunkSize == 64 * 1_024)
        #expect(FileChunks(path: "/nonexistent").chunkSize == 64 * 1_024)
    }
}
