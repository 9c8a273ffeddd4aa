import BatonAgent
import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

@Suite struct DiskFullTests {
    /// A real ENOSPC: the data directory on a 2 MiB tmpfs, a release that unpacks to 6 MiB.
    @Test(.enabled(if: SmallFilesystem.canMount, "cannot mount a tmpfs here: a real ENOSPC needs root"))
    func diskFullWhileUnpackingFailsCleanly() async throws {
        let mount = try TemporaryDirectory(prefix: "baton-tmpfs")
        defer { mount.remove() }
        try SmallFilesystem.mount(mount.path, size: "2m")
        defer { SmallFilesystem.unmount(mount.path) }

        let fixture = try AgentFixture(dataDirectory: mount.child("data"))
        defer { fixture.remove() }
        let engine = try fixture.engine()
        let v1 = try fixture.artifact("v1")
        let first = try await engine.deploy(try fixture.envelope("v1", artifact: v1), artifact: v1.path)
        #expect(first.phase == .succeeded)

        // Zeros compress to almost nothing, so the artifact fits but its contents do not.
        let big = String(repeating: "0", count: 3 << 20)
        let v2 = try fixture.artifact("v2", files: ["data/one.bin": big, "data/two.bin": big])
        let record = try await engine.deploy(try fixture.envelope("v2", artifact: v2), artifact: v2.path)
        #expect(record.phase == .failed)
        #expect(record.error?.code == "disk_full", "\(String(describing: record.error))")
        #expect(fixture.current() == "v1")
        #expect(fixture.currentMatches(v1))
        #expect(fixture.stagingEntries().isEmpty)
        #expect(fixture.releasesOnDisk() == ["v1"])
    }
}
