import BatonArchive
import BatonTestSupport
import Foundation
import Testing

/// The incremental parser on its own: chunk boundaries anywhere, header encodings.
@Suite struct TarReaderTests {
    /// What a parse produced: each entry with its data.
    struct Parsed: Equatable {
        var entries: [TarEntry] = []
        var data: [[UInt8]] = []
        var ended = false
    }

    static func parse(_ bytes: [UInt8], chunkSize: Int) throws -> Parsed {
        var reader = TarReader()
        var parsed = Parsed()
        var open = false
        var start = 0
        while start < bytes.count {
            let chunk = Array(bytes[start..<min(start + chunkSize, bytes.count)])
            start += chunkSize
            try chunk.withUnsafeBytes { buffer in
                var offset = 0
                while true {
                    let rest = UnsafeRawBufferPointer(rebasing: buffer[offset...])
                    let (event, consumed) = try reader.next(rest)
                    offset += consumed
                    switch event {
                    case .needsInput:
                        #expect(offset == buffer.count)
                        return
                    case .entry(let entry):
                        #expect(!open)
                        open = true
                        parsed.entries.append(entry)
                        parsed.data.append([])
                    case .data(let range):
                        #expect(open)
                        parsed.data[parsed.data.count - 1] += rest[range]
                    case .entryEnd:
                        #expect(open)
                        open = false
                    case .endOfArchive:
                        parsed.ended = true
                    }
                }
            }
        }
        try reader.finish()
        return parsed
    }

    static let sample: [UInt8] = tar {
        $0.directory("dir/")
        $0.file("dir/a.txt", (0..<1500).map { UInt8(truncatingIfNeeded: $0) })
        $0.file("empty", "")
        $0.pax([("path", "dir/" + String(repeating: "p", count: 180)), ("mtime", "1234567890.5")])
        $0.file("x", "pax named")
        $0.pax([("comment", "global")], global: true)
        $0.gnuLongName("dir/" + String(repeating: "g", count: 130))
        $0.gnuLongLink("dir/" + String(repeating: "p", count: 180))
        $0.symlink("y", to: "z")
        $0.hardLink("dir/b.txt", to: "dir/a.txt")
        $0.file("last.bin", [UInt8](repeating: 9, count: 512))
    }

    @Test(arguments: [1, 7, 100, 511, 512, 513, 1024, 4096, 1 << 20])
    func chunkBoundariesDoNotMatter(_ chunkSize: Int) throws {
        let whole = try Self.parse(Self.sample, chunkSize: Self.sample.count)
        let chunked = try Self.parse(Self.sample, chunkSize: chunkSize)
        #expect(chunked == whole)
        #expect(whole.ended)
        #expect(whole.entries.map(\.displayName) == [
            "dir/", "dir/a.txt", "empty", "dir/" + String(repeating: "p", count: 180),
            "dir/" + String(repeating: "g", count: 130), "dir/b.txt", "last.bin",
        ])
        #expect(whole.entries[3].modificationTime == 1_234_567_890)
        #expect(whole.entries[4].kind == .symbolicLink)
        #expect(whole.entries[4].linkName == Array(("dir/" + String(repeating: "p", count: 180)).utf8))
        #expect(whole.entries[5].kind == .hardLink)
        #expect(whole.data[1] == (0..<1500).map { UInt8(truncatingIfNeeded: $0) })
        #expect(whole.data[3] == Array("pax named".utf8))
        #expect(whole.data[6] == [UInt8](repeating: 9, count: 512))
    }

    /// pax record lengths count their own digits; lengths around 10 and 100 are the tricky ones.
    @Test func paxRecordLengths() throws {
        for length in 1...120 {
            let name = String(repeating: "q", count: length)
            let bytes = tar {
                $0.pax([("path", name)])
                $0.file("placeholder", "")
            }
            let parsed = try Self.parse(bytes, chunkSize: 512)
            #expect(parsed.entries.first?.name == Array(name.utf8), "length \(length)")
        }
    }

    /// Old tars summed the header as signed chars; that checksum is accepted too.
    @Test func signedChecksum() throws {
        var block = TarBuilder.block(TarBuilder.Header([0xe9, 0xe9, 0xe9], size: 0))
        for index in 148..<156 { block[index] = UInt8(ascii: " ") }
        let signed = block.reduce(0) { $0 + Int(Int8(bitPattern: $1)) }
        let digits = Array(String(signed, radix: 8).utf8)
        let field = [UInt8](repeating: UInt8(ascii: "0"), count: 6 - digits.count) + digits + [0, UInt8(ascii: " ")]
        block.replaceSubrange(148..<156, with: field)
        let parsed = try Self.parse(block + [UInt8](repeating: 0, count: 1024), chunkSize: 512)
        #expect(parsed.entries.first?.name == [0xe9, 0xe9, 0xe9])
    }

    @Test func base256Size() throws {
        var header = TarBuilder.Header("big", size: 600)
        header.base256Size = true
        var builder = TarBuilder()
        builder.append(header)
        builder.append(data: [UInt8](repeating: 1, count: 600))
        builder.end()
        let parsed = try Self.parse(builder.bytes, chunkSize: 100)
        #expect(parsed.entries.first?.size == 600)
        #expect(parsed.data.first?.count == 600)
    }

    @Test func octalFieldsWithSpaces() throws {
        var header = TarBuilder.Header("spaced", size: 0)
        header.rawSizeField = Array("      12 \0".utf8)
        var builder = TarBuilder()
        builder.append(header)
        builder.append(data: [UInt8](repeating: 2, count: 10))
        builder.end()
        let parsed = try Self.parse(builder.bytes, chunkSize: 512)
        #expect(parsed.entries.first?.size == 10)
    }

    @Test func trailingDataAfterTheEndIsIgnored() throws {
        var reader = TarReader()
        let bytes = tar { $0.file("a", "a") } + Array("not a header, and not read as one".utf8)
        try bytes.withUnsafeBytes { buffer in
            var offset = 0
            while true {
                let (event, consumed) = try reader.next(UnsafeRawBufferPointer(rebasing: buffer[offset...]))
                offset += consumed
                if event == .needsInput { break }
            }
        }
        try reader.finish()
        #expect(reader.isAtEnd)
        #expect(reader.trailingBytes == 33)
    }
}
