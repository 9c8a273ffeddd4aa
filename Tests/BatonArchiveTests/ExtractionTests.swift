import BatonArchive
import BatonTestSupport
import Foundation
import Testing

/// Archives that must extract, and what they must produce.
@Suite struct ExtractionTests {
    typealias TypeFlag = TarBuilder.TypeFlag

    /// Nested directories, modes (special bits and group/other write cleared, owner access
    /// added), relative symlinks, a hard link, a read-only directory written into afterwards.
    @Test(arguments: ArchiveFormat.allCases)
    func typicalRelease(_ format: ArchiveFormat) throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        let archive = tar {
            $0.directory("./")
            $0.directory("./bin/", mode: 0o755)
            $0.file("./bin/server", "#!/bin/sh\necho hi\n", mode: 0o4755)
            $0.file("./bin/helper", "helper", mode: 0o2775)
            $0.directory("./etc/", mode: 0o1777)
            $0.file("./etc/app.conf", "port = 8080\n", mode: 0o664)
            $0.file("./etc/secret", "s3cret", mode: 0o400)
            $0.file("./etc/odd", "group only", mode: 0o070)
            $0.directory("./lib/v1/", mode: 0o2755)
            $0.file("./lib/v1/libapp.so", [UInt8](repeating: 0xab, count: 70_000), mode: 0o755)
            $0.symlink("./lib/current", to: "v1")
            $0.symlink("./bin/lib", to: "../lib/current/libapp.so")
            $0.symlink("./self", to: ".")
            $0.hardLink("./bin/server-again", to: "./bin/server")
            $0.directory("./readonly/", mode: 0o500)
            $0.file("./readonly/inside.txt", "written after its read-only directory")
        }
        let summary = try sandbox.extract(tar: archive, format: format).get()

        #expect(summary.entries == 16)
        #expect(summary.files == 7)
        #expect(summary.directories == 5)  // bin, etc, lib (as a parent), lib/v1, readonly; not the root
        #expect(summary.symlinks == 3)
        #expect(summary.hardLinks == 1)
        let expectedBytes: UInt64 = 18 + 6 + 12 + 6 + 10 + 70_000 + 37
        #expect(summary.bytes == expectedBytes)

        #expect(sandbox.mode("bin/server") == 0o755)
        #expect(sandbox.mode("bin/helper") == 0o755)
        #expect(sandbox.mode("etc") == 0o755)
        #expect(sandbox.mode("etc/app.conf") == 0o644)
        #expect(sandbox.mode("etc/secret") == 0o600)
        #expect(sandbox.mode("etc/odd") == 0o640)
        #expect(sandbox.mode("lib/v1") == 0o755)
        #expect(sandbox.mode("readonly") == 0o700)
        #expect(sandbox.contents("readonly/inside.txt") == Array("written after its read-only directory".utf8))
        #expect(sandbox.contents("lib/v1/libapp.so") == [UInt8](repeating: 0xab, count: 70_000))

        #expect(sandbox.linkTarget("lib/current") == "v1")
        #expect(sandbox.linkTarget("bin/lib") == "../lib/current/libapp.so")
        #expect(sandbox.linkTarget("self") == ".")
        #expect(sandbox.contents("bin/lib")?.count == 70_000)

        let server = try #require(sandbox.status("bin/server"))
        let again = try #require(sandbox.status("bin/server-again"))
        #expect(server.st_ino == again.st_ino)
        #expect(server.st_nlink == 2)
        #expect(server.st_mtim.tv_sec == 1_700_000_000)
        #expect(sandbox.nothingOutside())
    }

    /// A directory first created as a parent may be listed once afterwards; its mode applies.
    @Test func explicitDirectoryAfterImplicitParent() throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        let archive = tar {
            $0.file("a/b/c.txt", "c")
            $0.directory("a/b/", mode: 0o750)
            $0.directory("a", mode: 0o711)
        }
        let summary = try sandbox.extract(tar: archive).get()
        #expect(summary.directories == 2)
        #expect(sandbox.mode("a/b") == 0o750)
        #expect(sandbox.mode("a") == 0o711)
        #expect(sandbox.stagedPaths() == ["a", "a/b", "a/b/c.txt"])
    }

    @Test func paxLongNamesAndLinks() throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        let longDirectory = (1...6).map { "directory-level-\($0)-" + String(repeating: "x", count: 40) }.joined(separator: "/")
        let longFile = "\(longDirectory)/" + String(repeating: "f", count: 200) + ".txt"
        let archive = tar {
            $0.pax([("path", longFile), ("mtime", "1600000000.123456789"), ("comment", "ignored")])
            $0.file("short-name-replaced", "long name content")
            $0.pax([("linkpath", longFile)])
            $0.symlink("long-link", to: "replaced")
            $0.pax([("path", "hard"), ("linkpath", longFile)])
            $0.hardLink("x", to: "y")
        }
        #expect(longFile.utf8.count > 400)
        let summary = try sandbox.extract(tar: archive).get()
        #expect(summary.entries == 3)
        #expect(sandbox.contents(longFile) == Array("long name content".utf8))
        #expect(sandbox.status(longFile)?.st_mtim.tv_sec == 1_600_000_000)
        #expect(sandbox.linkTarget("long-link") == longFile)
        #expect(sandbox.contents("hard") == Array("long name content".utf8))
        #expect(sandbox.nothingOutside())
    }

    /// A global pax header applies to all following members; a per-member empty value unsets it.
    @Test func globalPaxHeader() throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        let archive = tar {
            $0.pax([("mtime", "1500000000"), ("comment", "made by a test")], global: true)
            $0.file("a.txt", "a")
            $0.pax([("mtime", "")])
            $0.file("b.txt", "b", mode: 0o644)
        }
        _ = try sandbox.extract(tar: archive).get()
        #expect(sandbox.status("a.txt")?.st_mtim.tv_sec == 1_500_000_000)
        #expect(sandbox.status("b.txt")?.st_mtim.tv_sec == 1_700_000_000)
    }

    @Test func gnuLongNamesAndLinks() throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        let longName = "gnu/" + String(repeating: "n", count: 150) + "/" + String(repeating: "m", count: 150)
        let archive = tar {
            $0.gnuLongName(longName)
            $0.file("truncated-name", "gnu long name")
            $0.gnuLongName("gnu/long-link-" + String(repeating: "l", count: 120))
            $0.gnuLongLink(String(repeating: "n", count: 150) + "/" + String(repeating: "m", count: 150))
            $0.symlink("truncated", to: "truncated")
        }
        _ = try sandbox.extract(tar: archive).get()
        #expect(sandbox.contents(longName) == Array("gnu long name".utf8))
        #expect(
            sandbox.linkTarget("gnu/long-link-" + String(repeating: "l", count: 120))
                == String(repeating: "n", count: 150) + "/" + String(repeating: "m", count: 150))
    }

    /// Header variants: ustar prefix, base-256 size, pax size, old v7 headers, contiguous files.
    @Test func headerVariants() throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        let archive = tar {
            var prefixed = TarBuilder.Header("file.txt", size: 8)
            prefixed.prefix = Array("some/prefix/dir".utf8)
            $0.append(prefixed)
            $0.append(data: Array("prefixed".utf8))

            var base256 = TarBuilder.Header("base256.bin", size: 3)
            base256.base256Size = true
            base256.magic = .gnu
            $0.append(base256)
            $0.append(data: [1, 2, 3])

            $0.pax([("size", "5")])
            $0.append(TarBuilder.Header("pax-size.txt", size: 0))
            $0.append(data: Array("sized".utf8))

            var oldDirectory = TarBuilder.Header("v7dir/", typeflag: TypeFlag.oldRegular)
            oldDirectory.magic = .v7
            $0.append(oldDirectory)
            var oldFile = TarBuilder.Header("v7dir/old.txt", typeflag: TypeFlag.oldRegular, size: 3)
            oldFile.magic = .v7
            $0.append(oldFile)
            $0.append(data: Array("old".utf8))

            $0.append(TarBuilder.Header("contiguous.bin", typeflag: TypeFlag.contiguous, size: 4))
            $0.append(data: Array("cont".utf8))

            // A size on a directory carries no data (as GNU tar and Python read it).
            var sizedDirectory = TarBuilder.Header("sized-dir/", typeflag: TypeFlag.directory, size: 100)
            sizedDirectory.mode = 0o755
            $0.append(sizedDirectory)
            $0.file("after.txt", "after")
        }
        _ = try sandbox.extract(tar: archive).get()
        #expect(sandbox.contents("some/prefix/dir/file.txt") == Array("prefixed".utf8))
        #expect(sandbox.contents("base256.bin") == [1, 2, 3])
        #expect(sandbox.contents("pax-size.txt") == Array("sized".utf8))
        #expect(sandbox.status("v7dir").map { $0.st_mode & S_IFMT } == S_IFDIR)
        #expect(sandbox.contents("v7dir/old.txt") == Array("old".utf8))
        #expect(sandbox.contents("contiguous.bin") == Array("cont".utf8))
        #expect(sandbox.contents("after.txt") == Array("after".utf8))
    }

    /// Names are bytes: not being UTF-8 is no reason to refuse one.
    @Test func nonUTF8Names() throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        var builder = TarBuilder()
        builder.append(TarBuilder.Header([0x63, 0x61, 0x66, 0xe9, 0x2e, 0x74, 0x78, 0x74], size: 1))  // "café.txt" in Latin-1
        builder.append(data: [0x41])
        builder.end()
        let summary = try sandbox.extract(tar: builder.bytes).get()
        #expect(summary.files == 1)
        #expect(rawNames(in: sandbox.staging) == [[0x63, 0x61, 0x66, 0xe9, 0x2e, 0x74, 0x78, 0x74]])
    }

    /// Bytes after the end-of-archive marker (record padding) are ignored.
    @Test func recordPaddingAfterTheEnd() throws {
        var archive = tar { $0.file("a.txt", "a") }
        archive += [UInt8](repeating: 0, count: 8192)
        for format in ArchiveFormat.allCases {
            let sandbox = try Sandbox()
            defer { sandbox.remove() }
            #expect(try sandbox.extract(tar: archive, format: format).get().files == 1)
        }
    }

    /// Several gzip members one after the other decompress as one stream, split anywhere.
    @Test func concatenatedGzipMembers() throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        let content = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 131) }
        let archive = tar {
            $0.file("first.bin", content)
            $0.file("second.txt", "second")
        }
        // Split in the middle of the first file's data and again in a header.
        let parts = [archive[0..<30_000], archive[30_000..<100_900], archive[100_900...]]
        let gzip = parts.flatMap { GzipWriter.compress(Array($0)) }
        let summary = try sandbox.extract(raw: gzip, format: .tarGz).get()
        #expect(summary.files == 2)
        #expect(sandbox.contents("first.bin") == content)
        #expect(sandbox.contents("second.txt") == Array("second".utf8))
    }

    @Test func extractFromADescriptor() throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        let path = sandbox.archivePath(.tarGz)
        try Data(GzipWriter.compress(tar { $0.file("fd.txt", "via a descriptor") })).write(to: URL(fileURLWithPath: path))
        let fd = open(path, O_RDONLY)
        try #require(fd >= 0)
        defer { close(fd) }
        let summary = try ArchiveExtractor.extract(from: fd, format: .tarGz, into: sandbox.staging)
        #expect(summary.files == 1)
        #expect(sandbox.contents("fd.txt") == Array("via a descriptor".utf8))
        try ArchiveExtractor.syncTree(sandbox.staging)
    }

    @Test func syncTreeOfAMissingDirectory() throws {
        do throws(ExtractionError) {
            try ArchiveExtractor.syncTree("/nonexistent/baton-staging")
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .ioError)
        }
    }

    @Test func errorDescriptions() {
        let error = ExtractionError(.pathTraversal, entry: "../x", "archive entry '../x' has a '..' component")
        #expect(error.description == "path_traversal: archive entry '../x' has a '..' component")
        #expect(Set(ExtractionError.Code.allCases.map(\.rawValue)).count == ExtractionError.Code.allCases.count)
    }
}

/// The raw names in a directory (without `.` and `..`).
func rawNames(in path: String) -> [[UInt8]] {
    guard let directory = opendir(path) else { return [] }
    defer { closedir(directory) }
    var names: [[UInt8]] = []
    while let item = readdir(directory) {
        let name = withUnsafeBytes(of: item.pointee.d_name) { Array($0.prefix { $0 != 0 }) }
        if name != Array(".".utf8), name != Array("..".utf8) { names.append(name) }
    }
    return names
}
