import BatonArchive
import BatonTestSupport
import Foundation
import Testing

/// Member types that are never extracted, and the limits on entries and bytes.
@Suite struct TypeAndLimitRefusalTests {
    typealias TypeFlag = TarBuilder.TypeFlag

    @Test func devices() throws {
        try expectRefusal(.deviceEntry) { _ in tar { $0.entry("dev/null", typeflag: TypeFlag.characterDevice) } }
        try expectRefusal(.deviceEntry) { _ in tar { $0.entry("dev/sda", typeflag: TypeFlag.blockDevice) } }
    }

    @Test func fifo() throws {
        try expectRefusal(.fifoEntry) { _ in tar { $0.entry("pipe", typeflag: TypeFlag.fifo) } }
    }

    @Test(arguments: ["S", "V", "M", "D", "X", "N", "Z", "A", "9"])
    func unsupportedTypes(_ flag: String) throws {
        let typeflag = UInt8(ascii: flag.unicodeScalars.first!)
        try expectRefusal(.unsupportedEntry) { _ in
            tar {
                var header = TarBuilder.Header("odd", typeflag: typeflag, size: 10)
                header.magic = .gnu
                $0.append(header)
                $0.append(data: Array("0123456789".utf8))
            }
        }
    }

    /// A pax-format GNU sparse file: its data is a map, not the content.
    @Test func paxSparseFile() throws {
        try expectRefusal(.unsupportedEntry) { _ in
            tar {
                $0.pax([("GNU.sparse.major", "1"), ("GNU.sparse.minor", "0"), ("GNU.sparse.name", "sparse.bin")])
                $0.file("GNUSparseFile.0/sparse.bin", "1\n0\n4\n")
            }
        }
    }

    @Test func tooManyEntries() throws {
        var limits = ExtractionLimits()
        limits.maxEntries = 3
        try expectRefusal(.tooManyEntries, limits: limits) { _ in
            tar {
                for index in 0..<4 { $0.file("f\(index)", "x") }
            }
        }
        // Directories and links count too.
        try expectRefusal(.tooManyEntries, limits: limits) { _ in
            tar {
                $0.directory("d/")
                $0.file("d/f", "x")
                $0.symlink("s", to: "d/f")
                $0.hardLink("h", to: "d/f")
            }
        }
    }

    /// Parents created without an entry of their own are inodes too and count against the limit.
    @Test func implicitParentsCountAsEntries() throws {
        var limits = ExtractionLimits()
        limits.maxEntries = 3
        try expectRefusal(.tooManyEntries, limits: limits) { _ in tar { $0.file("a/b/c/file", "x") } }

        // Listed after all, they are counted once: three entries, three inodes.
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        let archive = tar {
            $0.file("a/b/file", "x")
            $0.directory("a/")
            $0.directory("a/b/")
        }
        let summary = try sandbox.extract(tar: archive, limits: limits).get()
        #expect(summary.entries == 3)
        #expect(summary.directories == 2)
    }

    @Test func totalBytesOverTheLimit() throws {
        var limits = ExtractionLimits()
        limits.maxTotalBytes = 1000
        try expectRefusal(.sizeLimitExceeded, limits: limits) { _ in
            tar {
                $0.file("one", [UInt8](repeating: 1, count: 600))
                $0.file("two", [UInt8](repeating: 2, count: 600))
            }
        }
    }

    @Test func fileOverThePerFileLimit() throws {
        var limits = ExtractionLimits()
        limits.maxFileBytes = 100
        try expectRefusal(.sizeLimitExceeded, limits: limits) { _ in
            tar { $0.file("big", [UInt8](repeating: 7, count: 101)) }
        }
    }

    /// A header claiming a huge size is refused from the header alone, before any data is read.
    @Test func hugeDeclaredSize() throws {
        try expectRefusal(.sizeLimitExceeded) { _ in
            tar {
                var header = TarBuilder.Header("huge", size: 1 << 40)
                header.base256Size = true
                $0.append(header)
            }
        }
        try expectRefusal(.sizeLimitExceeded) { _ in
            tar {
                $0.pax([("size", "99999999999999")])
                $0.file("huge", "")
            }
        }
    }

    @Test func hardLinksDoNotCountAsBytes() throws {
        var limits = ExtractionLimits()
        limits.maxTotalBytes = 1000
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        let archive = tar {
            $0.file("one", [UInt8](repeating: 1, count: 600))
            $0.hardLink("two", to: "one")
        }
        let summary = try sandbox.extract(tar: archive, limits: limits).get()
        #expect(summary.bytes == 600)
        #expect(summary.hardLinks == 1)
    }
}
