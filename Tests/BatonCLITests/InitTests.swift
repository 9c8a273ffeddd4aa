import BatonTestSupport
import Foundation
import Testing

@Suite("baton init")
struct InitTests {
    @Test("init makes a working fleet directory: an agent enrolled by its next steps answers baton status there")
    func initAndEnroll() async throws {
        let tmp = try TemporaryDirectory(prefix: "baton-init")
        defer { tmp.remove() }
        let fleetDir = tmp.child("fleet")
        let made = try ProcessRunner.runTool("baton", ["init", fleetDir])
        #expect(made.status == 0, "\(made.stderr)")
        #expect(made.stdout.contains("next:"))
        for file in ["pki/ca/ca.pem", "pki/ca/ca.key", "pki/ci.pem", "pki/ci.key", "keys/ci.key", "keys/ci.pub",
                     "trust-policy.yaml", "fleet.yaml", "apps/web.yaml", "baton.yaml", ".gitignore"] {
            #expect(FileManager.default.fileExists(atPath: "\(fleetDir)/\(file)"), "\(file)")
        }
        #expect(try FileManager.default.attributesOfItem(atPath: "\(fleetDir)/keys/ci.key")[.posixPermissions] as? Int == 0o600)
        let again = try ProcessRunner.runTool("baton", ["init", fleetDir])
        #expect(again.status == 2 && again.stderr.hasPrefix("error: file_exists:"))

        // Step 1-3 of the printed next steps, on loopback.
        let host = tmp.child("host")
        try FileManager.default.createDirectory(atPath: host, withIntermediateDirectories: true)
        #expect(try ProcessRunner.runTool("baton", ["pki", "issue", "agent", "web-1", "--ip", "127.0.0.1", "--ca", "\(fleetDir)/pki/ca", "--out", host]).status == 0)
        try """
            hostId: web-1
            environment: staging
            dataDir: \(host)/data
            listen: 127.0.0.1:0
            metricsListen: 127.0.0.1:0
            tls: {certificate: web-1.pem, privateKey: web-1.key, ca: \(fleetDir)/pki/ca/ca.pem}
            trust: \(fleetDir)/trust-policy.yaml
            """.write(toFile: "\(host)/batond.yaml", atomically: true, encoding: .utf8)
        let agent = try await Daemon.start(config: "\(host)/batond.yaml")
        defer { agent.stop() }
        let fleetFile = try String(contentsOfFile: "\(fleetDir)/fleet.yaml", encoding: .utf8)
        try fleetFile.replacingOccurrences(of: "127.0.0.1:7443", with: "127.0.0.1:\(agent.apiPort)")
            .write(toFile: "\(fleetDir)/fleet.yaml", atomically: true, encoding: .utf8)
        let status = try await offThePool { try ProcessRunner.run(ProcessRunner.executable("baton"), ["status", "--json"], currentDirectory: fleetDir) }
        #expect(status.status == 0, "\(status.stdout)\(status.stderr)")
        let row = try #require(try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])
        #expect(row["host"] as? String == "web-1" && row["reachable"] as? Bool == true)
    }
}
