import BatonArchive
import BatonTestSupport
import Foundation
import Testing

/// Damaged streams: bad headers, malformed pax data, truncation, corrupt gzip.
@Suite struct StreamRefusalTests {
    @Test func badChecksum() throws {
        try expectRefusal(.corruptHeader) { _ in
            tar {
                var header = TarBuilder.Header("file.txt", size: 2)
                header.checksumError = 1
                $0.append(header)
                $0.append(data: Array("hi".utf8))
            }
        }
    }

    @Test func badChecksumAfterGoodMembers() throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        var archive = tar { $0.file("ok.txt", "fine") }
        archive.removeLast(1024)
        var bad = TarBuilder.Header("bad.txt")
        bad.checksumError = -3
        archive += TarBuilder.block(bad) + [UInt8](repeating: 0, count: 1024)
        let error = try #require(sandbox.extract(tar: archive).failure)
        #expect(error.code == .corruptHeader)
        #expect(error.message.contains("byte 1024"), "\(error)")
        #expect(sandbox.nothingOutside())
    }

    @Test func unreadableNumericFields() throws {
        try expectRefusal(.corruptHeader) { _ in
            tar {
                var header = TarBuilder.Header("file.txt")
                header.rawSizeField = Array("12x45\0".utf8)
                $0.append(header)
            }
        }
        // base-256 with a negative value.
        try expectRefusal(.corruptHeader) { _ in
            tar {
                var header = TarBuilder.Header("file.txt")
                header.rawSizeField = [0xff] + [UInt8](repeating: 0xff, count: 11)
                $0.append(header)
            }
        }
        // base-256 marker bytes other than 0x80 and 0xff are not numbers.
        try expectRefusal(.corruptHeader) { _ in
            tar {
                var header = TarBuilder.Header("file.txt")
                header.rawSizeField = [0x81] + [UInt8](repeating: 0, count: 11)
                $0.append(header)
            }
        }
    }

    /// A single zero block ends nothing: members after it would be invisible to some readers.
    @Test func loneZeroBlockInTheMiddle() throws {
        try expectRefusal(.corruptHeader) { _ in
            var builder = TarBuilder()
            builder.file("a.txt", "a")
            builder.append(raw: [UInt8](repeating: 0, count: 512))
            builder.file("hidden.txt", "b")
            builder.end()
            return builder.bytes
        }
    }

    @Test func metadataWithoutAMember() throws {
        try expectRefusal(.corruptHeader) { _ in tar { $0.pax([("path", "orphan")]) } }
        try expectRefusal(.corruptHeader) { _ in tar { $0.gnuLongName("orphan") } }
    }

    /// Two headers of one kind for one member: readers disagree on which wins, so refuse.
    @Test func ambiguousMetadata() throws {
        try expectRefusal(.corruptHeader) { _ in
            tar {
                $0.pax([("path", "one")])
                $0.pax([("path", "two")])
                $0.file("x", "x")
            }
        }
        try expectRefusal(.corruptHeader) { _ in
            tar {
                $0.gnuLongName("one")
                $0.gnuLongName("two")
                $0.file("x", "x")
            }
        }
        try expectRefusal(.badPaxHeader) { _ in
            tar {
                $0.pax([("path", "one")])
                $0.gnuLongName("two")
                $0.file("x", "x")
            }
        }
    }

    @Test(arguments: [
        "5 a=b\n",  // length too short for the record
        "99 path=x\n",  // longer than the data
        "path=x\n",  // no length
        "12 path-x12\n",  // no '='
        "7 =abc\n",  // empty key
        "9 path=xy\n",  // length 9 but the record is 10 bytes: no newline where it should end
        "9 path=x\n\0\0garbage",  // data after NUL padding
    ])
    func malformedPaxRecords(_ data: String) throws {
        try expectRefusal(.badPaxHeader) { _ in
            tar {
                $0.pax(rawData: Array(data.utf8))
                $0.file("x", "x")
            }
        }
    }

    @Test func badPaxValues() throws {
        try expectRefusal(.badPaxHeader) { _ in
            tar {
                $0.pax([("size", "12abc")])
                $0.file("x", "x")
            }
        }
        try expectRefusal(.badPaxHeader) { _ in
            tar {
                $0.pax([("size", "-1")])
                $0.file("x", "x")
            }
        }
        try expectRefusal(.badPaxHeader) { _ in
            tar {
                $0.pax([("mtime", "yesterday")])
                $0.file("x", "x")
            }
        }
    }

    @Test func oversizedPaxHeader() throws {
        try expectRefusal(.badPaxHeader) { _ in
            tar {
                $0.append(TarBuilder.Header("PaxHeaders/x", typeflag: TarBuilder.TypeFlag.paxLocal, size: 2 << 20))
            }
        }
    }

    @Test func truncatedStreams() throws {
        var builder = TarBuilder()
        builder.directory("dir/")
        builder.file("dir/data.bin", [UInt8](repeating: 0x5a, count: 5000))
        builder.pax([("path", "dir/" + String(repeating: "p", count: 200))])
        builder.file("placeholder", "tail")
        builder.end()
        let full = builder.bytes
        let dataStart = 1024
        let cuts = [
            0,  // empty file
            100,  // inside the first header
            dataStart + 1000,  // inside file data
            dataStart + 5120 + 600,  // inside the pax data
            full.count - 1024,  // no end-of-archive marker at all
            full.count - 512,  // a single zero block
        ]
        for cut in cuts {
            try expectRefusal(.truncatedArchive) { _ in Array(full.prefix(cut)) }
        }
    }

    @Test func truncatedGzip() throws {
        let archive = tar { $0.file("data.bin", (0..<20_000).map { UInt8(truncatingIfNeeded: $0 &* 7919) }) }
        let gzip = GzipWriter.compress(archive)
        for cut in [1, 10, gzip.count / 2, gzip.count - 4, gzip.count - 1] {
            try expectRefusal(.truncatedArchive, raw: Array(gzip.prefix(cut)), format: .tarGz)
        }
        try expectRefusal(.truncatedArchive, raw: [], format: .tarGz)
    }

    @Test func notGzipAtAll() throws {
        let archive = tar { $0.file("a.txt", "plain tar given as tar.gz") }
        let error = try expectRefusal(.gzipCorrupt, raw: archive, format: .tarGz)
        #expect(error?.message.contains("gzip") == true)
    }

    @Test func corruptDeflateData() throws {
        let archive = tar { $0.file("data.bin", (0..<50_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 5) }) }
        var gzip = GzipWriter.compress(archive)
        // The first deflate block header follows the 10-byte gzip header: BTYPE 11 is reserved.
        gzip[10] = 0b111
        try expectRefusal(.gzipCorrupt, raw: gzip, format: .tarGz)
    }

    @Test func crcMismatch() throws {
        let archive = tar { $0.file("a.txt", "checked by the gzip trailer") }
        var gzip = GzipWriter.compress(archive)
        gzip[gzip.count - 8] ^= 0xff  // first byte of the CRC-32
        try expectRefusal(.gzipCorrupt, raw: gzip, format: .tarGz)
    }

    @Test func garbageAfterTheGzipMember() throws {
        let archive = tar { $0.file("a.txt", "x") }
        try expectRefusal(.gzipCorrupt, raw: GzipWriter.compress(archive) + Array("trailing junk".utf8), format: .tarGz)
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
