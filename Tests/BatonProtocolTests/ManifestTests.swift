import BatonProtocol
import Foundation
import Testing

@Suite struct ManifestTests {
    @Test func roundTripsThroughJSON() throws {
        let manifest = Fixtures.manifest()
        let decoded = try BatonJSON.decode(Manifest.self, from: BatonJSON.encode(manifest))
        #expect(decoded == manifest)
    }

    @Test func serialIsAFullUnsignedSixtyFourBitInteger() throws {
        var json = String(decoding: try BatonJSON.encode(Fixtures.manifest()), as: UTF8.self)
        json = json.replacingOccurrences(of: "\"serial\":10", with: "\"serial\":18446744073709551615")
        let decoded = try BatonJSON.decode(Manifest.self, from: Data(json.utf8))
        #expect(decoded.serial == UInt64.max)
        let negative = json.replacingOccurrences(of: "18446744073709551615", with: "-1")
        #expect(throws: DecodingError.self) { try BatonJSON.decode(Manifest.self, from: Data(negative.utf8)) }
    }

    @Test(arguments: ["a", "web", "web-2.api_x", String(repeating: "a", count: 64)])
    func validNames(name: String) { #expect(Name.isValid(name)) }

    @Test(arguments: ["", "Web", "-web", ".web", "..", "../etc", "a/b", "web app", String(repeating: "a", count: 65), "wéb"])
    func invalidNames(name: String) { #expect(!Name.isValid(name)) }

    @Test func durations() {
        #expect(BatonDuration(parsing: "1m30s")?.milliseconds == 90_000)
        #expect(BatonDuration(parsing: "250ms")?.milliseconds == 250)
        #expect(BatonDuration(parsing: "2h")?.description == "2h")
        #expect(BatonDuration(parsing: "90s")?.description == "1m30s")
        #expect(BatonDuration(parsing: "0s") == .zero)
        for bad in ["", "60", "s", "1x", "-1s", "1.5s", "99999999999999h"] {
            #expect(BatonDuration(parsing: bad) == nil, "\(bad)")
        }
    }

    @Test func timestamps() {
        let date = RFC3339.parse("2026-11-21T09:30:00Z")!
        #expect(RFC3339.format(date) == "2026-11-21T09:30:00Z")
        #expect(RFC3339.parse("2026-11-21T10:30:00+01:00") == date)
        #expect(RFC3339.parse("2026-11-21T09:30:00.500Z")!.timeIntervalSince(date) == 0.5)
        #expect(RFC3339.format(RFC3339.parse("1969-12-31T23:59:59Z")!) == "1969-12-31T23:59:59Z")
        for bad in ["2026-02-30T00:00:00Z", "2026-11-21 09:30:00Z", "2026-11-21T09:30:00", "yesterday"] {
            #expect(RFC3339.parse(bad) == nil, "\(bad)")
        }
    }

    @Test func validationNamesEveryProblem() {
        var manifest = Fixtures.manifest()
        manifest.release = "V2"
        manifest.keep = 0
        manifest.bake = BatonDuration(milliseconds: 25 * 3_600_000)
        manifest.artifact.sha256 = "XYZ"
        manifest.hooks = Hooks(prepare: Hook(command: .argv([])), activate: Hook(command: .shell("  "), timeout: .zero))
        manifest.health = HealthPolicy(checks: [.tcp(host: "", port: 70000)], timeout: .seconds(10), deadline: .seconds(5))
        manifest.expiresAt = manifest.issuedAt
        manifest.targets = []
        manifest.owner = "a\u{7}b"
        let problems = manifest.problems()
        for fragment in ["release", "keep", "bake", "artifact.sha256", "hooks.prepare", "hooks.activate.command",
                         "hooks.activate.timeout", "health.checks[0].host", "health.checks[0].port",
                         "health.deadline must be", "expiresAt", "targets", "owner"] {
            #expect(problems.contains { $0.contains(fragment) }, "\(fragment) in \(problems)")
        }
    }

    @Test func commandsAreArgvOrShell() throws {
        let argv = try BatonJSON.decode(Command.self, from: Data(#"["systemctl","restart","web"]"#.utf8))
        #expect(argv == .argv(["systemctl", "restart", "web"]))
        let shell = try BatonJSON.decode(Command.self, from: Data(#""make restart""#.utf8))
        #expect(shell.arguments == ["/bin/sh", "-c", "make restart"])
    }

    @Test func healthChecksAreTaggedByType() throws {
        let json = #"[{"type":"http","url":"http://127.0.0.1:1/h","expectStatus":"200-204","bodyContains":"ok"},{"type":"tcp","host":"127.0.0.1","port":22},{"type":"command","command":["true"]}]"#
        let checks = try BatonJSON.decode([HealthCheck].self, from: Data(json.utf8))
        #expect(checks[0] == .http(url: "http://127.0.0.1:1/h", expectStatus: StatusRange(200, 204), bodyContains: "ok"))
        #expect(checks[1] == .tcp(host: "127.0.0.1", port: 22))
        #expect(checks[2] == .command(.argv(["true"])))
        #expect(throws: DecodingError.self) {
            try BatonJSON.decode(HealthCheck.self, from: Data(#"{"type":"udp"}"#.utf8))
        }
    }
}
