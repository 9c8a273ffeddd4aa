import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

/// `baton release create` makes manifests that live a day unless asked otherwise, never
/// longer than the environment's `maxValidity`, and targeted where the policy wants it.
@Suite("baton release create: default expiry and targets")
struct ReleaseExpiryTests {
    @Test func aDayByDefaultTheEnvironmentsBoundIfShorterAndTargetsWhereRequired() async throws {
        let tmp = try TemporaryDirectory(prefix: "baton-release-expiry")
        defer { tmp.remove() }
        let fleet = tmp.child("fleet")
        #expect(try ProcessRunner.runTool("baton", ["init", fleet]).status == 0)
        try """
            keys: {ci: keys/ci.pub}
            environments:
              staging: {threshold: 1, keys: [ci]}
              production: {threshold: 1, keys: [ci], maxValidity: 6h, requireTargets: true}
            """.write(toFile: "\(fleet)/trust-policy.yaml", atomically: true, encoding: .utf8)
        // Nothing listens on port 1: the serial query fails at once and is only a warning.
        try """
            hosts:
              - {id: web-1, address: "127.0.0.1:1", environment: staging}
              - {id: prod-2, address: "127.0.0.1:1", environment: production}
              - {id: prod-1, address: "127.0.0.1:1", environment: production}
            """.write(toFile: "\(fleet)/fleet.yaml", atomically: true, encoding: .utf8)
        let source = tmp.child("src")
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        try "v1\n".write(toFile: "\(source)/VERSION", atomically: true, encoding: .utf8)
        #expect(try ProcessRunner.run("/bin/tar", ["-czf", tmp.child("v1.tar.gz"), "-C", source, "."]).status == 0)

        @Sendable func create(_ release: String, _ environment: String, _ extra: [String] = []) throws -> (ProcessResult, Manifest?) {
            let output = tmp.child("\(release).json")
            let result = try ProcessRunner.run(
                ProcessRunner.executable("baton"),
                ["release", "create", "web", "--artifact", tmp.child("v1.tar.gz"), "--release", release,
                 "--environment", environment, "--output", output] + extra,
                currentDirectory: fleet)
            guard result.status == 0, let data = FileManager.default.contents(atPath: output) else { return (result, nil) }
            return (result, try BatonJSON.decode(Manifest.self, from: data))
        }
        // Whole seconds: the dates round-trip through Double.
        func lifetime(_ manifest: Manifest?) -> Int? { manifest.map { Int($0.expiresAt.timeIntervalSince($0.issuedAt).rounded()) } }

        let (staged, staging) = try await offThePool { try create("v1", "staging") }
        #expect(staged.status == 0, "\(staged.stderr)")
        #expect(lifetime(staging) == 24 * 3600)
        #expect(staging?.targets == nil)

        let (produced, production) = try await offThePool { try create("v2", "production") }
        #expect(produced.status == 0, "\(produced.stderr)")
        #expect(lifetime(production) == 6 * 3600)
        #expect(production?.targets == ["prod-1", "prod-2"])

        let (chosen, one) = try await offThePool { try create("v3", "production", ["--target", "prod-2", "--expires-in", "2h"]) }
        #expect(chosen.status == 0, "\(chosen.stderr)")
        #expect(lifetime(one) == 2 * 3600)
        #expect(one?.targets == ["prod-2"])

        let (refused, none) = try await offThePool { try create("v4", "production", ["--expires-in", "2d"]) }
        #expect(refused.status == 2)
        #expect(refused.stderr.hasPrefix("error: validity_too_long:"), "\(refused.stderr)")
        #expect(none == nil)

        let (longer, week) = try await offThePool { try create("v5", "staging", ["--expires-in", "7d"]) }
        #expect(longer.status == 0, "\(longer.stderr)")
        #expect(lifetime(week) == 7 * 86_400)
    }
}
