import BatonController
import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

@Suite("The rollout lock's lease: history.lease and BATON_LOCK_LEASE")
struct RolloutLeaseConfigurationTests {
    func configuration(_ yaml: String, environment: [String: String] = [:]) throws -> ControllerConfiguration {
        let dir = try TemporaryDirectory(prefix: "baton-lease-config")
        defer { dir.remove() }
        try yaml.write(toFile: dir.child("baton.yaml"), atomically: true, encoding: .utf8)
        return try ControllerConfiguration.resolve(
            .init(), environment: environment.merging(["BATON_CONFIG": dir.child("baton.yaml")]) { $1 }, workingDirectory: dir.path)
    }

    @Test("default 60 s; set beside postgres or alone (SQLite stays); the variable wins")
    func chosen() throws {
        #expect(try configuration("stateDir: s\n").lockLease == nil)
        #expect(RolloutLease.defaultSeconds == 60)
        let alone = try configuration("history: {lease: 20s}\n")
        #expect(alone.history == .sqlite && alone.lockLease == 20)
        let shared = try configuration("history: {postgres: \"postgres://baton@db/baton\", tls: disable, lease: 2m}\n")
        #expect(shared.lockLease == 120)
        guard case .postgres = shared.history else {
            Issue.record("not postgres")
            return
        }
        #expect(try configuration("history: {lease: 20s}\n", environment: ["BATON_LOCK_LEASE": "3s"]).lockLease == 3)
    }

    @Test("a lease that is no duration, or out of 1s to 1h, is refused naming where it came from")
    func refused() throws {
        for (yaml, environment, message) in [
            ("history: {lease: soon}\n", [String: String](), "history.lease 'soon'"),
            ("history: {lease: 500ms}\n", [:], "history.lease '500ms'"),
            ("history: {lease: 2h}\n", [:], "from 1s to 1h"),
            ("stateDir: s\n", ["BATON_LOCK_LEASE": "0s"], "BATON_LOCK_LEASE '0s'"),
            ("history: {lease: 20s, tls: disable}\n", [:], "postgres"),
        ] {
            #expect { try configuration(yaml, environment: environment) } throws: { error in
                "\(error)".contains(message)
            }
        }
    }
}
