import BatonAgent
import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

/// `batond` refuses, as ssh does, files that decide what the host trusts when someone
/// other than their owner can change them, and a private key others can read.
@Suite struct PermissionRefusalTests {
    private func expectInsecure(
        _ path: String, chmod expected: String, sourceLocation: SourceLocation = #_sourceLocation,
        _ body: () throws -> Void
    ) {
        do {
            try body()
            Issue.record("accepted \(path)", sourceLocation: sourceLocation)
        } catch let error as ConfigurationError {
            #expect(error.code == .insecurePermissions, "\(error)", sourceLocation: sourceLocation)
            #expect(error.file == path, sourceLocation: sourceLocation)
            #expect(error.message.contains("`\(expected) \(path)`"), "\(error)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test(arguments: [0o664, 0o646, 0o666])
    func aConfigurationOthersCanWriteIsRefused(mode: Int) throws {
        let fixture = try AgentFixture()
        defer { fixture.remove() }
        #expect(throws: Never.self) { _ = try fixture.configuration }
        chmod(fixture.configPath, mode_t(mode))
        expectInsecure(fixture.configPath, chmod: "chmod go-w") { _ = try AgentConfiguration.load(fixture.configPath) }
    }

    @Test func aTrustPolicyOrTrustedKeyOthersCanWriteIsRefused() throws {
        let fixture = try AgentFixture()
        defer { fixture.remove() }
        let configuration = try fixture.configuration
        #expect(throws: Never.self) { _ = try configuration.loadTrustPolicy() }
        let policy = fixture.dir.child("trust.yaml")
        chmod(policy, 0o620)
        expectInsecure(policy, chmod: "chmod go-w") { _ = try configuration.loadTrustPolicy() }
        chmod(policy, 0o644)
        // Whoever can replace a trusted public key decides who may release.
        let key = fixture.dir.child("alice.pub")
        chmod(key, 0o666)
        expectInsecure(key, chmod: "chmod go-w") { _ = try configuration.loadTrustPolicy() }
        chmod(key, 0o444)
        #expect(throws: Never.self) { _ = try configuration.loadTrustPolicy() }
    }

    @Test func theCLIReportsTheCodeAndExitsWithAConfigurationError() async throws {
        let fixture = try AgentFixture()
        defer { fixture.remove() }
        chmod(fixture.configPath, 0o660)
        let config = fixture.configPath
        let result = try await offThePool { try ProcessRunner.runTool("batond", ["status", "--config", config]) }
        #expect(result.status == 2, "\(result.stdout)\(result.stderr)")
        #expect(result.stderr.contains("error: insecure_permissions: \(config): "), "\(result.stderr)")
        #expect(result.stderr.contains("chmod go-w \(config)"))
    }

    /// `batond run` under `timeout`, so an agent that starts anyway ends (status 124).
    private func runBounded(_ config: String) throws -> ProcessResult {
        try ProcessRunner.run("/usr/bin/timeout", ["20", ProcessRunner.executable("batond"), "run", "--config", config])
    }

    @Test(.timeLimit(.minutes(2)))
    func runRefusesATLSKeyOthersCanReadAndACAOthersCanWrite() async throws {
        let host = try await DaemonHost.make()
        defer { host.remove() }
        let config = host.configPath
        let key = host.agentKeyPath
        chmod(key, 0o640)
        let readable = try await offThePool { try runBounded(config) }
        #expect(readable.status == 2, "\(readable.stderr)")
        #expect(readable.stderr.contains("error: insecure_permissions: \(key): "), "\(readable.stderr)")
        #expect(readable.stderr.contains("chmod 600 \(key)"))

        chmod(key, 0o600)
        let ca = host.dir.child("tls/ca.pem")
        chmod(ca, 0o664)
        let writable = try await offThePool { try runBounded(config) }
        #expect(writable.status == 2, "\(writable.stderr)")
        #expect(writable.stderr.contains("error: insecure_permissions: \(ca): "), "\(writable.stderr)")

        // With both fixed the same files serve.
        chmod(ca, 0o644)
        let daemon = try await host.start()
        daemon.signal(SIGTERM)
        #expect(await daemon.waitForExit() == 0)
    }
}
