import BatonAgent
import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

/// `batond apply --artifact FILE` checks the file against the manifest before the serial
/// is consumed: a wrong file is refused with nothing recorded, and the same signed
/// envelope then deploys with the right file.
@Suite struct ApplyArtifactCheckTests {
    /// A file of the artifact's size whose last byte differs: only the digest tells.
    private func sameSizeImpostor(of artifact: AgentFixture.Artifact, in fixture: AgentFixture) throws -> String {
        var bytes = try Data(contentsOf: URL(fileURLWithPath: artifact.path))
        bytes[bytes.count - 1] ^= 0xFF
        let path = fixture.dir.child("impostor.tar.gz")
        try bytes.write(to: URL(fileURLWithPath: path))
        return path
    }

    private func apply(_ fixture: AgentFixture, envelope: String, artifact: String) async throws -> ProcessResult {
        try await offThePool {
            try ProcessRunner.run(
                ProcessRunner.executable("batond"),
                ["apply", "--config", fixture.configPath, "--envelope", envelope, "--artifact", artifact])
        }
    }

    /// The refusal of a submission, nil if it was accepted.
    private func refusal(_ engine: DeploymentEngine, _ envelope: [UInt8], artifact: String) async -> RequestError? {
        do {
            _ = try await engine.submit(envelope: envelope, artifactFile: artifact)
            return nil
        } catch {
            return error
        }
    }

    @Test func theEngineRefusesAWrongFileBeforeConsumingTheSerial() async throws {
        let fixture = try AgentFixture()
        defer { fixture.remove() }
        let v1 = try fixture.artifact("v1")
        let envelope = try fixture.envelope("v1", artifact: v1)
        let other = try fixture.artifact("other", files: ["padding": String(repeating: "p", count: 4096)])
        let impostor = try sameSizeImpostor(of: v1, in: fixture)

        let engine = try fixture.engine()
        let bySize = await refusal(engine, envelope.bytes, artifact: other.path)
        #expect(bySize?.info.code == "size_mismatch")
        let byDigest = await refusal(engine, envelope.bytes, artifact: impostor)
        #expect(byDigest?.info.code == "digest_mismatch")
        for message in [bySize?.info.message, byDigest?.info.message] {
            #expect(message?.contains("serial is still unused") == true, "\(message ?? "accepted")")
        }
        // Nothing began: no deployment record, no state for the app, no release.
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: fixture.layout.deploymentsDirectory)) ?? []).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: "\(fixture.layout.stateDirectory)/apps/web.json"))
        // The one read of each file hashed, cached and unpacked it: none of it is left.
        #expect(!FileManager.default.fileExists(atPath: fixture.layout.artifact(v1.sha256)))
        #expect(fixture.temporaryArtifactEntries().isEmpty)

        let record = try await engine.deploy(envelope, artifact: v1.path)
        #expect(record.phase == .succeeded, "\(record.error?.description ?? "")")
        #expect(record.serial == 1)
        #expect(fixture.current() == "v1")
    }

    @Test func batondApplyWithTheWrongArtifactLeavesTheEnvelopeUsable() async throws {
        let fixture = try AgentFixture()
        defer { fixture.remove() }
        let v1 = try fixture.artifact("v1")
        let envelope = try fixture.envelope("v1", artifact: v1)
        let impostor = try sameSizeImpostor(of: v1, in: fixture)

        let wrong = try await apply(fixture, envelope: envelope.path, artifact: impostor)
        #expect(wrong.status == 1, "\(wrong.stdout)\(wrong.stderr)")
        #expect(wrong.stderr.contains("digest_mismatch"), "\(wrong.stderr)")
        #expect(!wrong.stdout.contains("accepted"), "\(wrong.stdout)")

        let right = try await apply(fixture, envelope: envelope.path, artifact: v1.path)
        #expect(right.status == 0, "\(right.stdout)\(right.stderr)")
        #expect(!right.stdout.contains("already accepted"), "\(right.stdout)")
        #expect(fixture.current() == "v1")

        // Replay protection is as strict as before: once used, the envelope deploys nothing new.
        let again = try await apply(fixture, envelope: envelope.path, artifact: v1.path)
        #expect(again.stdout.contains("already accepted as deployment"), "\(again.stdout)")
    }
}
