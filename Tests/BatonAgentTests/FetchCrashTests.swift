@testable import BatonAgent
import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

/// `kill -9` of a real `batond apply` while it fetches `artifact.url` from a real nginx
/// that trickles: the half-fetched bytes are never taken for the artifact, the host stays
/// on its previous release, and the next start settles the deployment and fetches anew.
@Suite("kill -9 during a fetch", .serialized)
struct FetchCrashTests {
    @Test("killed mid-fetch: nothing cached under the digest, the host on v1, the record failed, the next deployment fetches and succeeds")
    func killedWhileFetching() async throws {
        // Under /slow/, ~64 KiB a second: the artifact takes seconds, so the kill lands
        // mid-body; the deployment after the restart fetches it at full speed.
        let setup = try ArtifactFetchTests.Setup(serverDirectives: "location /slow/ { limit_rate 64k; }")
        defer { setup.remove() }
        let fixture = setup.fixture
        let batond = ProcessRunner.executable("batond")

        let v1 = try fixture.artifact("v1")
        let first = try ProcessRunner.run(
            batond, ["apply", "--config", fixture.configPath, "--envelope", try fixture.envelope("v1", artifact: v1).path, "--artifact", v1.path])
        try #require(first.status == 0, "\(first.stdout)\(first.stderr)")

        let v2 = try ArtifactFetchTests.bigArtifact(fixture, "v2", bytes: 512 << 10)
        try setup.nginx.serve(v2.path, at: "/slow/web-v2.tar.gz")
        try setup.nginx.serve(v2.path, at: "/web-v2.tar.gz")
        let url = setup.nginx.url("/web-v2.tar.gz")
        let killedEnvelope = try fixture.envelope("v2", artifact: v2, url: setup.nginx.url("/slow/web-v2.tar.gz"))

        let process = Process()
        process.executableURL = URL(fileURLWithPath: batond)
        process.arguments = ["apply", "--config", fixture.configPath, "--envelope", killedEnvelope.path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Kill once part of the body has arrived (a half-received file in the cache's
        // temporary directory), not before the request or after the end.
        var partial = false
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline, process.isRunning {
            let sizes = setup.temporaryFiles().compactMap {
                (try? FileManager.default.attributesOfItem(atPath: "\(fixture.layout.artifactsTemporaryDirectory)/\($0)"))?[.size] as? Int
            }
            if sizes.contains(where: { $0 > 0 }) { partial = true; break }
            try await Task.sleep(for: .milliseconds(20))
        }
        try #require(partial && process.isRunning, "the fetch never got under way")
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal)

        // As the kill left it: v1 live, nothing under v2's digest.
        #expect(fixture.current() == "v1")
        #expect(!setup.cached().contains(v2.sha256), "\(setup.cached())")

        // The next start settles the killed deployment, then a new one fetches again.
        let again = try ProcessRunner.run(
            batond, ["apply", "--config", fixture.configPath, "--envelope", try fixture.envelope("v2", artifact: v2, url: url).path])
        #expect(again.status == 0, "\(again.stdout)\(again.stderr)")
        #expect(fixture.current() == "v2" && fixture.currentMatches(v2))
        #expect(setup.cached().isEmpty, "the fetched copy is consumed by its unpack: \(setup.cached())")
        #expect(setup.temporaryFiles().isEmpty, "\(setup.temporaryFiles())")

        let reader = StateReader(dataDirectory: fixture.layout.root)
        let ids = try FileManager.default.contentsOfDirectory(atPath: fixture.layout.deploymentsDirectory)
            .filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }
        let records = try ids.compactMap { id throws -> DeploymentRecord? in try reader.record(id) }
        let killed = try #require(records.first { $0.release == "v2" && $0.phase != .succeeded }, "\(records.map { ($0.release, $0.phase) })")
        #expect(killed.phase == .failed, "\(killed.phase)")
        #expect(killed.error?.code == "interrupted", "\(String(describing: killed.error))")
    }
}
