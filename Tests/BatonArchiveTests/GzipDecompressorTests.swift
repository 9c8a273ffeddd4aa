import BatonArchive
import BatonTestSupport
import Foundation
import Testing

@Suite struct GzipDecompressorTests {
    static func inflate(_ compressed: [UInt8], inputChunk: Int, outputSize: Int) throws -> [UInt8] {
        let gzip = try GzipDecompressor()
        var result: [UInt8] = []
        var output = [UInt8](repeating: 0, count: outputSize)
        var start = 0
        repeat {
            let chunk = Array(compressed[start..<min(start + inputChunk, compressed.count)])
            start += inputChunk
            try chunk.withUnsafeBytes { input in
                var used = 0
                var produced = 0
                repeat {
                    let step = try output.withUnsafeMutableBytes { out in
                        try gzip.decompress(UnsafeRawBufferPointer(rebasing: input[used...]), into: out)
                    }
                    used += step.consumed
                    produced = step.produced
                    result += output[0..<produced]
                } while used < input.count || produced == output.count
            }
        } while start < compressed.count
        try gzip.finish()
        return result
    }

    static let text = (0..<200_000).map { UInt8(truncatingIfNeeded: ($0 * 7) ^ ($0 >> 9)) }

    @Test(arguments: [(1, 1), (1, 4096), (3, 7), (4096, 1), (65536, 65536), (1 << 20, 256 << 10)])
    func anyChunking(_ inputChunk: Int, _ outputSize: Int) throws {
        let compressed = GzipWriter.compress(Self.text)
        // One byte at a time through a one-byte buffer is slow in debug builds: use a prefix.
        let text = inputChunk == 1 && outputSize == 1 ? Array(Self.text.prefix(5000)) : Self.text
        let input = inputChunk == 1 && outputSize == 1 ? GzipWriter.compress(text) : compressed
        #expect(try Self.inflate(input, inputChunk: inputChunk, outputSize: outputSize) == text)
    }

    @Test func concatenatedMembers() throws {
        let parts = [Array(Self.text[0..<1000]), [], Array(Self.text[1000...])]
        let compressed = parts.flatMap { GzipWriter.compress($0) }
        #expect(try Self.inflate(compressed, inputChunk: 777, outputSize: 4096) == Self.text)
    }

    @Test func emptyInputIsTruncated() throws {
        let gzip = try GzipDecompressor()
        #expect(throws: ExtractionError(.truncatedArchive, "the archive is empty; expected a gzip stream")) {
            try gzip.finish()
        }
    }
}
