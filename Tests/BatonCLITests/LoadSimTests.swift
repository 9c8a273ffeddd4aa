import BatonTestSupport
import Foundation
import Testing

/// `baton-loadsim` against the real `baton`: the simulator stands in for agents in
/// bench/scale.sh, so a real rollout to it must go as it goes to real agents, or the
/// bench measures something the controller never does.
@Suite("baton-loadsim", .serialized)
struct LoadSimTests {
    /// Keys, fleet CA, controller certificate, trust policy and app, as bench/scale.sh makes them.
    static func fleetDirectory() throws -> TemporaryDirectory {
        let dir = try TemporaryDirectory(prefix: "baton-loadsim")
        for arguments in [
            ["keys", "generate", "ci", "--dir", "keys"], ["pki", "init", "pki/ca"],
            ["pki", "issue", "controller", "ci", "--ca", "pki/ca", "--out", "pki"],
        ] {
            let result = try ProcessRunner.runTool("baton", arguments, currentDirectory: dir.path)
            guard result.status == 0 else { throw TestSupportError("baton \(arguments.joined(separator: " ")): \(result.stderr)") }
        }
        try FileManager.default.createDirectory(atPath: dir.child("apps"), withIntermediateDirectories: true)
        let files = [
            "trust-policy.yaml": """
                keys:
                  ci: keys/ci.pub
                environments:
                  staging: {threshold: 1, keys: [ci], rollbackThreshold: 1}
                """,
            "apps/web.yaml": "app: web\nowner: team-web\nenvironments: [staging]\nkeep: 3\n",
            "baton.yaml": """
                fleet: fleet.yaml
                apps: apps
                trustPolicy: trust-policy.yaml
                stateDir: state
                tls: {certificate: pki/ci.pem, key: pki/ci.key, ca: pki/ca/ca.pem}
                signingKey: keys/ci.key
                """,
        ]
        for (name, text) in files { try text.write(toFile: dir.child(name), atomically: false, encoding: .utf8) }
        var tar = TarBuilder()
        tar.file("VERSION", "sim\n")
        try tar.write(to: dir.child("art.tar"))
        return dir
    }

    /// Starts the simulator for `count` hosts and writes fleet.yaml from its addresses.
    static func startSimulator(_ dir: TemporaryDirectory, count: Int, _ extra: [String]) async throws -> BackgroundCommand {
        let simulator = try BackgroundCommand(
            ProcessRunner.executable("baton-loadsim"),
            ["--ca", "pki/ca", "--trust", "trust-policy.yaml", "--count", "\(count)", "--addresses", "addresses",
             "--latency", "10ms..40ms"] + extra,
            currentDirectory: dir.path)
        let deadline = Date().addingTimeInterval(20)
        while !FileManager.default.fileExists(atPath: dir.child("addresses")) {
            guard Date() < deadline, simulator.process.isRunning else {
                simulator.process.terminate()
                throw TestSupportError("baton-loadsim did not start: \(simulator.stderr)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        let lines = try String(contentsOfFile: dir.child("addresses"), encoding: .utf8).split(separator: "\n")
        let hosts = lines.map { line in
            let fields = line.split(separator: " ")
            return "  - {id: \(fields[0]), address: \"\(fields[1])\", environment: staging}"
        }
        try ("hosts:\n" + hosts.joined(separator: "\n") + "\n").write(toFile: dir.child("fleet.yaml"), atomically: false, encoding: .utf8)
        return simulator
    }

    static func summary(_ output: String) throws -> [String: Any] {
        let line = try #require(output.split(separator: "\n").last { $0.contains("\"type\":\"summary\"") })
        return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    static func phases(_ summary: [String: Any]) -> [String: String] {
        let hosts = summary["hosts"] as? [[String: Any]] ?? []
        return Dictionary(hosts.map { ($0["host"] as? String ?? "?", $0["phase"] as? String ?? "?") }, uniquingKeysWith: { a, _ in a })
    }

    @Test("a real rollout to simulated agents: upload, deploy, signed receipts, then a failing release halts and reverts")
    func rolloutAgainstSimulator() async throws {
        let dir = try Self.fleetDirectory()
        defer { dir.remove() }
        let simulator = try await Self.startSimulator(dir, count: 3, ["--fail-rate", "0.5", "--fail-release", "bad", "--seed", "8"])
        defer { simulator.process.terminate() }
        let baton = { (arguments: [String]) throws -> ProcessResult in
            try ProcessRunner.runTool("baton", arguments, currentDirectory: dir.path)
        }

        let first = try baton(["deploy", "web", "--artifact", "art.tar", "--release", "v1", "--environment", "staging",
                               "--key", "keys/ci.key", "--json"])
        #expect(first.status == 0, "\(first.stdout)\n\(first.stderr)")
        let v1 = try Self.summary(first.stdout)
        #expect(v1["outcome"] as? String == "succeeded")
        #expect(Self.phases(v1) == ["host-1": "succeeded", "host-2": "succeeded", "host-3": "succeeded"])
        #expect(first.stdout.contains("\"phase\":\"uploading\""), "the controller uploaded the artifact to the simulated agents")
        #expect(first.stdout.contains("\"phase\":\"checking\""), "the agents' phases were streamed")

        // The receipts the simulated agents signed were accepted as evidence.
        let rolloutID = try #require(v1["rolloutID"] as? String)
        let evidence = try baton(["evidence", rolloutID, "-o", "evidence.json"])
        #expect(evidence.status == 0, "\(evidence.stdout)\n\(evidence.stderr)")
        #expect(evidence.stdout.contains("3 receipt(s) from 3 host(s)"), "\(evidence.stdout)")
        let verified = try baton(["evidence", "verify", "--ca", "pki/ca/ca.pem", "--trust", "trust-policy.yaml", "evidence.json"])
        #expect(verified.status == 0 && verified.stdout.contains("Verdict: VERIFIED"), "\(verified.stdout)\n\(verified.stderr)")

        // With seed 8 and --fail-rate 0.5, release "bad" (serial 2) passes its health check on
        // host-1 and fails on host-2: the canary succeeds, the first batch fails and rolls
        // back, the rollout halts and reverts the canary with a signed return.
        let bad = try baton(["deploy", "web", "--artifact", "art.tar", "--release", "bad", "--environment", "staging",
                             "--key", "keys/ci.key", "--canary", "1", "--batch", "1", "--json"])
        #expect(bad.status == 1, "\(bad.stdout)\n\(bad.stderr)")
        let halted = try Self.summary(bad.stdout)
        #expect(halted["serial"] as? Int == 2)
        #expect(halted["outcome"] as? String == "failed")
        #expect(halted["halted"] as? Bool == true)
        #expect(Self.phases(halted) == ["host-1": "reverted", "host-2": "rolled_back", "host-3": "skipped"])

        // The agents still run v1, as their app status tells the controller.
        let status = try baton(["status", "--json"])
        #expect(status.stdout.components(separatedBy: "\"current\":\"v1\"").count - 1 == 3, "\(status.stdout)")
    }
}
