import BatonPKI
import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

/// `batond run` does not start on a certificate of its own that every controller would
/// refuse: it says so, with the way to renew, and exits as for a configuration error.
@Suite struct AgentCertificateValidityTests {
    /// A host whose agent certificate was issued at `issuedAt` for `days` days.
    private func host(issuedAt: Date, days: Int) throws -> (dir: TemporaryDirectory, config: String) {
        let dir = try TemporaryDirectory(prefix: "baton-cert-validity")
        let ca = try FleetCA.create(in: dir.child("ca"), now: Date().addingTimeInterval(-90 * 86_400))
        let tls = dir.child("tls")
        try FileManager.default.createDirectory(atPath: tls, withIntermediateDirectories: true)
        try ca.issueAgent(hostID: "web-1", ipAddresses: ["127.0.0.1"], validityDays: days, now: issuedAt).write(to: tls)
        try SigningKey().verifyingKey.pem.write(toFile: dir.child("ci.pub"), atomically: false, encoding: .utf8)
        try "keys:\n  ci: ci.pub\nenvironments:\n  staging: {threshold: 1, keys: [ci]}\n"
            .write(toFile: dir.child("trust.yaml"), atomically: false, encoding: .utf8)
        let config = dir.child("batond.yaml")
        try """
            hostId: web-1
            environment: staging
            dataDir: data
            trust: trust.yaml
            listen: 127.0.0.1:0
            metricsListen: 127.0.0.1:0
            tls: {certificate: tls/web-1.pem, privateKey: tls/web-1.key, ca: \(ca.certificatePath)}
            """.write(toFile: config, atomically: false, encoding: .utf8)
        return (dir, config)
    }

    @Test(arguments: [
        (-30.0 * 86_400, "has expired"),
        (3.0 * 86_400, "is not valid yet"),
    ])
    func runRefusesACertificateOutsideItsValidity(offset: TimeInterval, state: String) async throws {
        let (dir, config) = try host(issuedAt: Date().addingTimeInterval(offset), days: 1)
        defer { dir.remove() }
        // Under `timeout`: an agent that starts anyway is stopped (status 124) rather than
        // left running.
        let result = try await offThePool {
            try ProcessRunner.run("/usr/bin/timeout", ["20", ProcessRunner.executable("batond"), "run", "--config", config])
        }
        #expect(result.status == 2, "\(result.stdout)\(result.stderr)")
        let certificate = dir.child("tls/web-1.pem")
        #expect(result.stderr.contains("error: tls_expired: \(certificate) \(state)"), "\(result.stderr)")
        #expect(result.stderr.contains("batond csr --host-id web-1"))
        #expect(result.stderr.contains("baton pki sign-csr web-1.csr --role agent"))
        // Refused before anything was served or reconciled.
        #expect(!result.stderr.contains("api listening"))
        #expect(!FileManager.default.fileExists(atPath: dir.child("data")))
    }
}
