import BatonAgent
import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

/// Crafted archives through the whole engine: each refused with its own code, `current`
/// unchanged, nothing written outside the data directory's staging area, staging removed,
/// no release left. (BatonArchiveTests checks every rule in the extractor itself.)
@Suite struct ExtractionRefusalTests {
    static let cases: [(code: String, build: @Sendable (inout TarBuilder) -> Void)] = [
        ("absolute_path", { $0.file("/etc/evil", "x") }),
        ("path_traversal", { $0.file("../../evil", "x") }),
        ("duplicate_entry", { $0.file("a", "1"); $0.file("a", "2") }),
        ("symlink_absolute", { $0.symlink("link", to: "/etc/passwd") }),
        ("symlink_escape", { $0.symlink("link", to: "../../../evil") }),
        ("parent_not_directory", { $0.directory("real"); $0.symlink("dir", to: "real"); $0.file("dir/evil", "x") }),
        ("hardlink_invalid", { $0.hardLink("h", to: "/etc/passwd") }),
        ("device_entry", { $0.entry("dev", typeflag: TarBuilder.TypeFlag.characterDevice) }),
        ("fifo_entry", { $0.entry("fifo", typeflag: TarBuilder.TypeFlag.fifo) }),
        ("unsupported_entry", { $0.entry("vol", typeflag: TarBuilder.TypeFlag.volumeLabel) }),
    ]

    @Test(arguments: 0..<cases.count)
    func refusedWithItsCodeAndTheHostUntouched(index: Int) async throws {
        let (code, build) = Self.cases[index]
        let fixture = try AgentFixture()
        defer { fixture.remove() }
        let engine = try fixture.engine()
        let v1 = try fixture.artifact("v1")
        #expect(try await engine.deploy(try fixture.envelope("v1", artifact: v1), artifact: v1.path).phase == .succeeded)

        var tar = TarBuilder()
        tar.file("VERSION", "evil\n")
        build(&tar)
        tar.end()
        let path = fixture.dir.child("evil.tar.gz")
        try Data(tar.gzipped()).write(to: URL(fileURLWithPath: path))
        let evil = try fixture.artifact(at: path)
        let before = try FileManager.default.subpathsOfDirectory(atPath: fixture.dir.path).sorted()

        let record = try await engine.deploy(try fixture.envelope("v2", artifact: evil), artifact: path)
        #expect(record.phase == .failed)
        #expect(record.error?.code == code, "\(String(describing: record.error))")
        #expect(fixture.current() == "v1")
        #expect(fixture.currentMatches(v1))
        #expect(fixture.stagingEntries().isEmpty)
        #expect(fixture.releasesOnDisk() == ["v1"])
        // Nothing appeared anywhere else in the host's directory tree but state and cache files.
        let after = try FileManager.default.subpathsOfDirectory(atPath: fixture.dir.path).sorted()
        let added = Set(after).subtracting(before).filter { !$0.hasPrefix("data/state/") && !$0.hasPrefix("data/artifacts/") && !$0.hasSuffix(".envelope.json") }
        #expect(added.isEmpty, "\(added)")
        #expect(!FileManager.default.fileExists(atPath: "/etc/evil"))
        #expect(!FileManager.default.fileExists(atPath: fixture.dir.child("evil")))
    }
}
