import BatonArchive
import BatonTestSupport
import Foundation
import Testing

/// The staging directory itself: it must exist, be empty, not be a symlink; a full disk
/// is reported as such.
@Suite struct StagingDirectoryTests {
    @Test func stagingNotEmpty() throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        try "left over".write(toFile: sandbox.staged("old.txt"), atomically: false, encoding: .utf8)
        let error = try #require(sandbox.extract(tar: tar { $0.file("a.txt", "a") }).failure)
        #expect(error.code == .stagingNotEmpty)
        #expect(sandbox.stagedPaths() == ["old.txt"])
        #expect(sandbox.nothingOutside())
    }

    @Test func stagingMissing() throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        let path = sandbox.archivePath(.tar)
        try Data(tar { $0.file("a.txt", "a") }).write(to: URL(fileURLWithPath: path))
        #expect(throws: ExtractionError.self) {
            try ArchiveExtractor.extract(archiveAt: path, format: .tar, into: sandbox.dir.child("missing"))
        }
        do throws(ExtractionError) {
            try ArchiveExtractor.extract(archiveAt: path, format: .tar, into: sandbox.dir.child("missing"))
        } catch {
            #expect(error.code == .ioError)
        }
    }

    /// A staging path that is a symlink is refused, not followed.
    @Test func stagingIsASymlink() throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        try FileManager.default.removeItem(atPath: sandbox.staging)
        try FileManager.default.createSymbolicLink(atPath: sandbox.staging, withDestinationPath: "outside")
        let error = try #require(sandbox.extract(tar: tar { $0.file("planted.txt", "x") }).failure)
        #expect(error.code == .ioError)
        #expect(try FileManager.default.contentsOfDirectory(atPath: sandbox.outside) == ["keep.txt"])
    }

    @Test func archiveMissing() throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        do throws(ExtractionError) {
            try ArchiveExtractor.extract(archiveAt: sandbox.dir.child("nope.tar"), format: .tar, into: sandbox.staging)
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .ioError)
        }
    }

    /// A real ENOSPC: staging on a 2 MiB tmpfs, an archive that unpacks to 6 MiB.
    @Test(.enabled(if: SmallFilesystem.canMount, "cannot mount a tmpfs here: a real ENOSPC needs root"))
    func diskFull() throws {
        let mount = try TemporaryDirectory(prefix: "baton-archive-tmpfs")
        defer { mount.remove() }
        try SmallFilesystem.mount(mount.path, size: "2m")
        defer { SmallFilesystem.unmount(mount.path) }
        let staging = mount.child("staging")
        try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: false)

        let chunk = [UInt8](repeating: 0x30, count: 3 << 20)
        let archive = tar {
            $0.file("data/one.bin", chunk)
            $0.file("data/two.bin", chunk)
        }
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        for format in ArchiveFormat.allCases {
            let path = sandbox.archivePath(format)
            try Data(format == .tarGz ? GzipWriter.compress(archive) : archive).write(to: URL(fileURLWithPath: path))
            do throws(ExtractionError) {
                try ArchiveExtractor.extract(archiveAt: path, format: format, into: staging)
                Issue.record("expected disk_full for \(format)")
            } catch {
                #expect(error.code == .diskFull, "\(error)")
                #expect(error.message.contains("no space left"))
                #expect(error.entry == "data/one.bin" || error.entry == "data/two.bin")
            }
            _ = try ProcessRunner.run("/bin/rm", ["-rf", "\(staging)/data"])
        }
    }
}
