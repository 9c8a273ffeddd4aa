import BatonAgent
import Foundation
import BatonProtocol
import Testing

@Suite struct AgentConfigurationTests {
    @Test func defaultsAndRelativePaths() throws {
        let config = try AgentConfiguration.parse(
            yaml: "hostId: web-1\nenvironment: staging\ntrust: trust.yaml\n", file: "/etc/baton/batond.yaml")
        #expect(config.dataDirectory == "/var/lib/baton")
        #expect(config.listen == ListenAddress(host: "0.0.0.0", port: 7443))
        // Off unless asked for: a second agent on one machine must not collide on a fixed port.
        #expect(config.metricsListen == nil)
        let metrics = try AgentConfiguration.parse(
            yaml: "hostId: web-1\nenvironment: staging\ntrust: trust.yaml\nmetricsListen: 127.0.0.1:9464\n", file: "/etc/baton/batond.yaml")
        #expect(metrics.metricsListen == ListenAddress(host: "127.0.0.1", port: 9464))
        #expect(config.trustPolicyPath == "/etc/baton/trust.yaml")
        let relative = try AgentConfiguration.parse(
            yaml: "hostId: web-1\nenvironment: staging\ntrust: trust.yaml\ndataDir: data\n", file: "batond.yaml")
        #expect(relative.dataDirectory == FileManager.default.currentDirectoryPath + "/data")
        #expect(config.limits.hookOutputBytes == 64 << 10)
        #expect(config.releaseSync == .automatic)
        let syncfs = try AgentConfiguration.parse(
            yaml: "hostId: web-1\nenvironment: staging\ntrust: trust.yaml\nreleaseSync: filesystem\n", file: "batond.yaml")
        #expect(syncfs.releaseSync == .fileSystem)
        let files = try AgentConfiguration.parse(
            yaml: "hostId: web-1\nenvironment: staging\ntrust: trust.yaml\nreleaseSync: files\n", file: "batond.yaml")
        #expect(files.releaseSync == .eachFile)
        let auto = try AgentConfiguration.parse(
            yaml: "hostId: web-1\nenvironment: staging\ntrust: trust.yaml\nreleaseSync: auto\n", file: "batond.yaml")
        #expect(auto.releaseSync == .automatic)
    }

    @Test func theExampleFileParses() throws {
        let path = #filePath.components(separatedBy: "/Tests/")[0] + "/agent/batond.example.yaml"
        let config = try AgentConfiguration.load(path)
        #expect(config.hostID == "web-1")
        #expect(config.labels["role"] == "web")
        #expect(config.tls?.ca == "/etc/baton/ca.pem")
        #expect(config.limits.maxArtifactBytes == 4 << 30)
        #expect(config.limits.minUploadBytesPerSecond == 64 << 10)
        #expect(config.limits.uploadRateWindow == .seconds(20))
        // Copied as it is, the example serves no metrics, so several agents can run on one machine.
        #expect(config.metricsListen == nil)
    }

    @Test(arguments: [
        ("environment: staging\ntrust: t.yaml\n", "missing_field", 1),
        ("hostId: Web_1\nenvironment: staging\ntrust: t.yaml\n", "invalid_value", 1),
        ("hostId: web-1\nenvironment: staging\ntrust: t.yaml\nlisten: nowhere\n", "invalid_value", 4),
        ("hostId: web-1\nenvironment: staging\ntrust: t.yaml\nlimits:\n  hookOutput: lots\n", "invalid_value", 5),
        ("hostId: web-1\nenvironment: staging\ntrust: t.yaml\ntls:\n  certificate: a.pem\n", "missing_field", 5),
        ("hostId: web-1\nenvironment: staging\ntrust: t.yaml\ndatadir: /x\n", "unknown_field", 4),
        ("hostId: web-1\nenvironment: staging\ntrust: t.yaml\nlimits:\n  uploadRateWindow: 0s\n", "invalid_value", 5),
        ("hostId: web-1\nenvironment: staging\ntrust: t.yaml\nlimits:\n  minUploadRate: fast\n", "invalid_value", 5),
        // `none` is the extractor's own mode, never a host's: a release must be on disk before the switch.
        ("hostId: web-1\nenvironment: staging\ntrust: t.yaml\nreleaseSync: none\n", "invalid_value", 4),
        ("hostId: web-1\nenvironment: staging\ntrust: t.yaml\nreleaseSync: fast\n", "invalid_value", 4),
    ])
    func errorsNameTheFileAndLine(yaml: String, code: String, line: Int) {
        do {
            _ = try AgentConfiguration.parse(yaml: yaml, file: "batond.yaml")
            Issue.record("accepted: \(yaml)")
        } catch {
            #expect(error.code.rawValue == code, "\(error)")
            #expect(error.line == line, "\(error)")
            #expect(error.file == "batond.yaml")
        }
    }
}
