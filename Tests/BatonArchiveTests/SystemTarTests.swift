import BatonArchive
import BatonTestSupport
import Foundation
import Testing

/// Archives made by the system's GNU tar (only the tests run it; the library never does).
@Suite struct SystemTarTests {
    /// A source tree with what releases hold: nested directories, an executable, an empty
    /// file and directory, a long name, a relative symlink, a hard link.
    static func makeSource(in sandbox: Sandbox) throws -> String {
        let source = sandbox.dir.child("source")
        let fm = FileManager.default
        let longDirectory = "share/" + String(repeating: "long-directory-name-", count: 6)
        for directory in ["bin", "lib/app", "empty", longDirectory] {
            try fm.createDirectory(atPath: "\(source)/\(directory)", withIntermediateDirectories: true)
        }
        try "#!/bin/sh\necho server\n".write(toFile: "\(source)/bin/server", atomically: false, encoding: .utf8)
        chmod("\(source)/bin/server", 0o755)
        try "".write(toFile: "\(source)/lib/app/empty.txt", atomically: false, encoding: .utf8)
        try Data((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 17) }).write(
            to: URL(fileURLWithPath: "\(source)/lib/app/data.bin"))
        try "deep\n".write(toFile: "\(source)/\(longDirectory)/" + String(repeating: "f", count: 120) + ".txt",
            atomically: false, encoding: .utf8)
        try fm.createSymbolicLink(atPath: "\(source)/bin/data", withDestinationPath: "../lib/app/data.bin")
        try fm.linkItem(atPath: "\(source)/bin/server", toPath: "\(source)/bin/server-link")
        return source
    }

    @Test(arguments: ["gnu", "posix"])
    func systemTarArchive(_ tarFormat: String) throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        let source = try Self.makeSource(in: sandbox)
        let archive = sandbox.archivePath(.tarGz)
        let made = try ProcessRunner.run("/bin/tar", ["--format=\(tarFormat)", "-czf", archive, "-C", source, "."])
        try #require(made.status == 0, "\(made.stderr)")

        let summary = try ArchiveExtractor.extract(archiveAt: archive, format: .tarGz, into: sandbox.staging)
        #expect(summary.files == 4)
        #expect(summary.hardLinks == 1)
        #expect(summary.symlinks == 1)
        try expectSameTree(source, sandbox.staging)
        let server = try #require(sandbox.status("bin/server"))
        #expect(server.st_mode & 0o777 == 0o755)
        #expect(sandbox.status("bin/server-link")?.st_ino == server.st_ino)
        #expect(sandbox.linkTarget("bin/data") == "../lib/app/data.bin")
        #expect(sandbox.nothingOutside())
    }

    /// 2,000 files, 16 MB: every file byte-compares equal; prints the time next to `tar xzf`.
    @Test func largeArchive() throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        let source = sandbox.dir.child("source")
        var generator = XorShift(seed: 0x9e37_79b9_7f4a_7c15)
        var expected: [String: [UInt8]] = [:]
        for index in 0..<2000 {
            let directory = "\(source)/lib/part-\(index / 100)"
            if index % 100 == 0 { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
            // Half random (incompressible), half text: about 16 MB unpacked, 9 MB packed.
            let size = 4096 + Int(generator.next() % 8192)
            let bytes: [UInt8] = index % 2 == 0
                ? generator.bytes(size)
                : Array(String(repeating: "line \(index) of a text file\n", count: size / 26).utf8)
            let name = "lib/part-\(index / 100)/file-\(index).dat"
            try Data(bytes).write(to: URL(fileURLWithPath: "\(source)/\(name)"))
            expected[name] = bytes
        }
        let archive = sandbox.archivePath(.tarGz)
        let made = try ProcessRunner.run("/bin/tar", ["-czf", archive, "-C", source, "."])
        try #require(made.status == 0, "\(made.stderr)")

        let clock = ContinuousClock()
        var summary = ExtractionSummary()
        let ours = try clock.measure {
            summary = try ArchiveExtractor.extract(archiveAt: archive, format: .tarGz, into: sandbox.staging)
        }
        #expect(summary.files == 2000)
        #expect(summary.directories == 21)
        for (name, bytes) in expected {
            #expect(sandbox.contents(name) == bytes, "\(name)")
        }

        let reference = sandbox.dir.child("reference")
        try FileManager.default.createDirectory(atPath: reference, withIntermediateDirectories: false)
        var status: Int32 = 0
        let theirs = try clock.measure {
            status = try ProcessRunner.run("/bin/tar", ["-xzf", archive, "-C", reference]).status
        }
        #expect(status == 0)
        let size = (try FileManager.default.attributesOfItem(atPath: archive)[.size] as? Int) ?? 0
        print("largeArchive: \(summary.files) files, \(summary.bytes) bytes (\(size) packed): BatonArchive \(ours), tar xzf \(theirs)")
    }

    func expectSameTree(_ source: String, _ target: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let fm = FileManager.default
        let expected = (fm.enumerator(atPath: source)?.allObjects as? [String] ?? []).sorted()
        let actual = (fm.enumerator(atPath: target)?.allObjects as? [String] ?? []).sorted()
        #expect(actual == expected, sourceLocation: sourceLocation)
        for name in expected {
            let from = "\(source)/\(name)", to = "\(target)/\(name)"
            let type = try fm.attributesOfItem(atPath: from)[.type] as? FileAttributeType
            #expect(try fm.attributesOfItem(atPath: to)[.type] as? FileAttributeType == type, "\(name)", sourceLocation: sourceLocation)
            if type == .typeRegular {
                #expect(fm.contentsEqual(atPath: from, andPath: to), "\(name)", sourceLocation: sourceLocation)
            }
        }
    }
}

/// A fast deterministic generator for test data.
struct XorShift {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
    mutating func bytes(_ count: Int) -> [UInt8] {
        var result = [UInt8](repeating: 0, count: count)
        result.withUnsafeMutableBytes { raw in
            var offset = 0
            while offset < count {
                var word = next()
                let take = min(8, count - offset)
                withUnsafeBytes(of: &word) { raw.baseAddress!.advanced(by: offset).copyMemory(from: $0.baseAddress!, byteCount: take) }
                offset += take
            }
        }
        return result
    }
}
