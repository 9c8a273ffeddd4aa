import BatonAgent
import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

/// The data directory's modes hold without systemd's `UMask=0077`: `batond apply` is run
/// under `umask 0`, the most permissive there is.
@Suite struct DefaultModesTests {
    /// Runs `batond apply` with umask 0.
    private func applyWithOpenUmask(_ fixture: AgentFixture, envelope: String, artifact: String) throws -> ProcessResult {
        try ProcessRunner.run(
            "/bin/sh",
            ["-c", "umask 0; exec \"$0\" \"$@\"", ProcessRunner.executable("batond"), "apply", "--config", fixture.configPath,
             "--envelope", envelope, "--artifact", artifact])
    }

    /// Every regular file and directory under `root`, with its permission bits.
    private func modes(under root: String) -> [String: Int] {
        var found: [String: Int] = [:]
        for relative in (try? FileManager.default.subpathsOfDirectory(atPath: root)) ?? [] {
            let path = "\(root)/\(relative)"
            var st = stat()
            guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) != S_IFLNK else { continue }
            found[relative] = Int(st.st_mode & 0o7777)
        }
        return found
    }

    @Test func stateArtifactsAndAuditAreOwnerOnlyUnderAnOpenUmask() async throws {
        let fixture = try AgentFixture()
        defer { fixture.remove() }
        let artifact = try fixture.artifact("v1", files: ["bin/run": "#!/bin/sh\n"])
        let hooks = Hooks(activate: Hook(command: .shell("echo secret-token-from-the-hook")))
        let envelope = try fixture.envelope("v1", artifact: artifact, hooks: hooks)
        let result = try await offThePool { try applyWithOpenUmask(fixture, envelope: envelope.path, artifact: artifact.path) }
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")

        let layout = fixture.layout
        #expect(filePermissions(layout.root) == 0o700)
        let state = modes(under: layout.stateDirectory)
        #expect(!state.isEmpty)
        for (path, mode) in state where path != "agent.lock" {
            let isDirectory = (try? FileManager.default.attributesOfItem(atPath: "\(layout.stateDirectory)/\(path)")[.type]
                as? FileAttributeType) == .typeDirectory
            #expect(mode == (isDirectory ? 0o700 : 0o600), "state/\(path) is \(String(mode, radix: 8))")
        }
        // The record holds the hook's output: it must be among the files checked.
        let record = try #require(state.keys.first { $0.hasPrefix("deployments/") && $0.hasSuffix(".json") })
        #expect(fileText("\(layout.stateDirectory)/\(record)").contains("secret-token-from-the-hook"))
        for file in ["audit.log", "audit.head", "apps/web.json", "approved/web/v1.json"] {
            #expect(state[file] == 0o600, "state/\(file)")
        }
        // `batond apply` keeps no cached copy (the tree is what the host keeps); an
        // uploaded copy's mode is ArtifactCacheTests' `aStoredCopyIsOwnerOnly`.
        #expect(!FileManager.default.fileExists(atPath: layout.artifact(artifact.sha256)))
        for dir in [layout.artifactsDirectory, layout.artifactsTemporaryDirectory, "\(layout.root)/artifacts"] {
            #expect(filePermissions(dir) == 0o700, "\(dir)")
        }
        // Release trees are the app's files: readable, never writable by others.
        #expect(filePermissions(layout.releaseDirectory("web", "v1")) == 0o755)
        #expect(filePermissions(layout.releasesDirectory("web")) == 0o755)
    }

    @Test func looserDirectoriesAreTightenedAtStartAndSaidSo() async throws {
        let fixture = try AgentFixture()
        defer { fixture.remove() }
        let layout = fixture.layout
        for dir in [layout.root, layout.stateDirectory, layout.deploymentsDirectory] {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
        chmod(layout.root, 0o755)
        chmod(layout.stateDirectory, 0o777)
        chmod(layout.deploymentsDirectory, 0o750)
        let artifact = try fixture.artifact("v1")
        let envelope = try fixture.envelope("v1", artifact: artifact)
        let result = try await offThePool { try applyWithOpenUmask(fixture, envelope: envelope.path, artifact: artifact.path) }
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        for dir in [layout.root, layout.stateDirectory, layout.deploymentsDirectory] {
            #expect(filePermissions(dir) == 0o700, "\(dir)")
        }
        let lines = result.stderr.split(separator: "\n").filter { $0.contains("tightened a data directory") }
        #expect(lines.count == 3, "\(result.stderr)")
        #expect(lines.contains { $0.contains("baton.path=\(layout.stateDirectory)") && $0.contains("baton.old_mode=777") })
    }
}
