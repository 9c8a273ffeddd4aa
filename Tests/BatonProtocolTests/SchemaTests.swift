import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

/// `Protocol/manifest.schema.json` against the manifests Baton accepts and refuses, checked
/// with Python's jsonschema (`Protocol/interop/schema_check.py`, run from the virtual environment of scripts/test-python).
@Suite struct SchemaTests {
    static let hint = Python.venvHint

    /// invalid_manifest vectors whose problem JSON Schema cannot express (relations between
    /// fields, calendar validity, duration bounds, duplicate members). The schema accepts
    /// them; the agent does not.
    static let beyondSchema: Set<String> = [
        "invalid-manifest-expires-before-issued",
        "invalid-manifest-lifetime-over-366-days",
        "invalid-manifest-deadline-below-timeout",
        "invalid-manifest-hook-timeout-too-long",
        "invalid-manifest-impossible-date",
        // JSON Schema validates the parsed value; duplicate members are gone by then, and
        // nesting inside an unknown member is nothing it bounds.
        "invalid-manifest-duplicate-member",
        "invalid-manifest-duplicate-member-escaped",
        "invalid-manifest-duplicate-member-past-deep-nesting",
        "invalid-manifest-nesting-too-deep",
    ]

    struct Verdict: Decodable {
        var file: String
        var valid: Bool
        var errors: [String]
    }

    /// Validates each named document; returns the verdicts by name.
    static func check(_ documents: [String: [UInt8]]) throws -> [String: Verdict] {
        try Python.require(["jsonschema"], install: hint)
        let dir = try TemporaryDirectory(prefix: "baton-schema")
        defer { dir.remove() }
        var files: [String] = []
        for (name, bytes) in documents.sorted(by: { $0.key < $1.key }) {
            let file = dir.child(name + ".json")
            try Data(bytes).write(to: URL(fileURLWithPath: file))
            files.append(file)
        }
        let run = try Python.run("interop/schema_check.py", [ProtocolFiles.schema] + files)
        try #require(run.status == 0, "schema_check.py failed (\(run.status)): \(run.stderr)")
        var verdicts: [String: Verdict] = [:]
        for line in run.stdout.split(separator: "\n") {
            let verdict = try JSONDecoder().decode(Verdict.self, from: Data(line.utf8))
            let name = URL(fileURLWithPath: verdict.file).deletingPathExtension().lastPathComponent
            verdicts[name] = verdict
        }
        #expect(verdicts.count == documents.count)
        return verdicts
    }

    static func payloads(where include: (ProtocolVector) -> Bool) throws -> [String: [UInt8]] {
        var out: [String: [UInt8]] = [:]
        for name in ProtocolVector.names {
            let vector = try ProtocolVector.load(name)
            if include(vector), let payload = vector.payload { out[name] = payload }
        }
        return out
    }

    @Test func theSchemaIsAValidDraft202012Schema() throws {
        try Python.require(["jsonschema"], install: Self.hint)
        let run = try Python.run("interop/schema_check.py", [ProtocolFiles.schema])
        #expect(run.status == 0, "\(run.stderr)")
    }

    @Test func everyAcceptedPayloadMatchesTheSchema() throws {
        let accepted = try Self.payloads { if case .accept = $0.expect { true } else { false } }
        #expect(accepted.count >= 10)
        for (name, verdict) in try Self.check(accepted).sorted(by: { $0.key < $1.key }) {
            #expect(verdict.valid, "\(name): \(verdict.errors)")
        }
    }

    @Test func invalidManifestVectorsAreRefusedByTheSchema() throws {
        let invalid = try Self.payloads { $0.expect == .refuse(.invalidManifest) }
        #expect(invalid.count >= 15)
        for (name, verdict) in try Self.check(invalid).sorted(by: { $0.key < $1.key }) {
            if Self.beyondSchema.contains(name) {
                #expect(verdict.valid, "\(name) is now caught by the schema: remove it from beyondSchema")
            } else {
                #expect(!verdict.valid, "\(name): the schema accepts a manifest the agent refuses")
            }
        }
    }

    // MARK: The schema and the Swift decoder agree

    static var base: [String: Any] { [
        "app": "web", "release": "2026.11.21-1", "serial": 42, "environment": "staging",
        "issuedAt": "2026-11-21T11:00:00Z", "expiresAt": "2026-11-28T12:00:00Z",
        "artifact": ["sha256": String(repeating: "ab", count: 32), "size": 1024, "format": "tar.gz"],
        "hooks": ["activate": ["command": ["systemctl", "restart", "web"], "timeout": "30s"]],
        "health": ["checks": [["type": "http", "url": "http://127.0.0.1:8080/healthz"]], "deadline": "30s"],
        "bake": "1m", "keep": 5, "notes": "notes", "owner": "team-web", "source": "git:abc",
    ] }

    static func variant(_ change: (inout [String: Any]) -> Void) -> [String: Any] {
        var m = base
        change(&m)
        return m
    }

    static func health(_ check: [String: Any]) -> [String: Any] { ["checks": [check]] }

    /// (name, should be valid, the manifest)
    static var cases: [(String, Bool, [String: Any])] { [
        ("base", true, base),
        ("expect-status-number", true, variant { $0["health"] = health(["type": "http", "url": "http://x/", "expectStatus": 204]) }),
        ("expect-status-single-string", true, variant { $0["health"] = health(["type": "http", "url": "http://x/", "expectStatus": "204"]) }),
        ("shell-command", true, variant { $0["hooks"] = ["prepare": ["command": "make check && echo ok"]] }),
        ("compound-duration", true, variant { $0["bake"] = "1h30m500ms" }),
        ("zero-bake", true, variant { $0["bake"] = "0s" }),
        ("timestamp-offset-fraction", true, variant { $0["issuedAt"] = "2026-11-21T12:30:00.5+01:00" }),
        ("unknown-fields", true, variant { $0["x-extra"] = 1; $0["signedBy"] = ["alice"] }),
        ("tcp-check", true, variant { $0["health"] = health(["type": "tcp", "host": "localhost", "port": 5432]) }),
        ("command-check", true, variant { $0["health"] = health(["type": "command", "command": ["bin/check"]]) }),
        ("largest-serial", true, variant { $0["serial"] = UInt64.max }),
        ("targets", true, variant { $0["targets"] = ["web-1", "web-2"] }),
        ("https-artifact-url", true, variant { $0["artifact"] = ["sha256": String(repeating: "0", count: 64), "size": 1, "format": "tar", "url": "https://a.example/x.tar"] }),

        ("uppercase-app", false, variant { $0["app"] = "Web" }),
        ("app-trailing-newline", false, variant { $0["app"] = "web\n" }),
        ("release-too-long", false, variant { $0["release"] = String(repeating: "a", count: 65) }),
        ("duration-with-space", false, variant { $0["bake"] = "5 m" }),
        ("duration-bare-number", false, variant { $0["bake"] = "30" }),
        ("duration-trailing-newline", false, variant { $0["bake"] = "30s\n" }),
        ("duration-unknown-unit", false, variant { $0["bake"] = "1d" }),
        ("serial-as-string", false, variant { $0["serial"] = "42" }),
        ("serial-fraction", false, variant { $0["serial"] = 4.5 }),
        ("tcp-port-out-of-range", false, variant { $0["health"] = health(["type": "tcp", "host": "localhost", "port": 70000]) }),
        ("http-check-without-url", false, variant { $0["health"] = health(["type": "http"]) }),
        ("check-without-type", false, variant { $0["health"] = health(["url": "http://x/"]) }),
        ("command-is-a-number", false, variant { $0["hooks"] = ["activate": ["command": 42]] }),
        ("argv-empty-program", false, variant { $0["hooks"] = ["activate": ["command": [""]]] }),
        ("shell-only-whitespace", false, variant { $0["hooks"] = ["activate": ["command": "   "]] }),
        ("hook-without-command", false, variant { $0["hooks"] = ["activate": ["timeout": "5s"]] }),
        ("duplicate-targets", false, variant { $0["targets"] = ["web-1", "web-1"] }),
        ("notes-with-nul", false, variant { $0["notes"] = "a\u{0}b" }),
        ("source-with-tab", false, variant { $0["source"] = "git:\tabc" }),
        ("ftp-artifact-url", false, variant { $0["artifact"] = ["sha256": String(repeating: "0", count: 64), "size": 1, "format": "tar", "url": "ftp://a.example/x.tar"] }),
        ("short-sha256", false, variant { $0["artifact"] = ["sha256": String(repeating: "0", count: 63), "size": 1, "format": "tar"] }),
        ("artifact-too-large", false, variant { $0["artifact"] = ["sha256": String(repeating: "0", count: 64), "size": 68_719_476_737, "format": "tar"] }),
        ("no-checks", false, variant { $0["health"] = ["checks": [Any]()] }),
        ("seventeen-checks", false, variant { $0["health"] = ["checks": Array(repeating: ["type": "tcp", "host": "h", "port": 1], count: 17)] }),
        ("keep-101", false, variant { $0["keep"] = 101 }),
        ("month-13", false, variant { $0["issuedAt"] = "2026-13-01T00:00:00Z" }),
        ("timestamp-space-separator", false, variant { $0["issuedAt"] = "2026-11-21 11:00:00Z" }),
        ("status-range-letters", false, variant { $0["health"] = health(["type": "http", "url": "http://x/", "expectStatus": "2xx"]) }),
        ("missing-environment", false, variant { $0["environment"] = nil }),
    ] }

    @Test func theSchemaAndTheSwiftDecoderAgree() throws {
        var documents: [String: [UInt8]] = [:]
        for (name, shouldBeValid, manifest) in Self.cases {
            let bytes = try JSONSerialization.data(withJSONObject: manifest, options: [.sortedKeys])
            documents[name] = Array(bytes)
            let swiftValid = (try? BatonJSON.decode(Manifest.self, from: bytes))?.problems().isEmpty ?? false
            #expect(swiftValid == shouldBeValid, "\(name): Swift says \(swiftValid ? "valid" : "invalid")")
        }
        let verdicts = try Self.check(documents)
        for (name, shouldBeValid, _) in Self.cases {
            let verdict = try #require(verdicts[name])
            #expect(verdict.valid == shouldBeValid, "\(name): the schema says \(verdict.valid ? "valid" : "invalid") \(verdict.errors)")
        }
    }
}
