import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

/// `baton keys` and `baton manifest`, run as an operator would, following the README.
@Suite struct ManifestCommandTests {
    func baton(_ arguments: [String], in dir: TemporaryDirectory) throws -> ProcessResult {
        try ProcessRunner.runTool("baton", arguments, currentDirectory: dir.path)
    }

    /// One line on stderr, `error: <code>: ...`, and a non-zero status.
    func expectOneLineError(_ result: ProcessResult, code: String, status: Int32? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(result.status != 0, sourceLocation: sourceLocation)
        if let status { #expect(result.status == status, sourceLocation: sourceLocation) }
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(result.stderr)", sourceLocation: sourceLocation)
        #expect(result.stderr.hasPrefix("error: \(code): "), "\(result.stderr)", sourceLocation: sourceLocation)
    }

    func writeManifest(_ dir: TemporaryDirectory, environment: String = "production", name: String = "web-v2.json") throws {
        let manifest = Manifest(
            app: "web", release: "v2", serial: 2, environment: environment, issuedAt: Date().addingTimeInterval(-60),
            expiresAt: Date().addingTimeInterval(86_400),
            artifact: ArtifactReference(sha256: String(repeating: "a", count: 64), size: 1_048_576, format: .tarGz),
            hooks: Hooks(activate: Hook(command: .argv(["systemctl", "restart", "web"]), timeout: .seconds(30))),
            bake: .minutes(2), keep: 5, owner: "team-web")
        try BatonJSON.encode(manifest, pretty: true).write(to: URL(fileURLWithPath: dir.child(name)))
    }

    @Test func theReadmeWorkflow() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        for name in ["alice", "bob"] {
            let generated = try baton(["keys", "generate", name], in: dir)
            #expect(generated.status == 0, "\(generated.stderr)")
            let keyid = try #require(generated.stdout.split(separator: "\n").last?.split(separator: " ").last)
            #expect(keyid.count == 64)
            let id = try baton(["keys", "id", "\(name).pub"], in: dir)
            #expect(id.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == String(keyid))
            var st = stat()
            stat(dir.child("\(name).key"), &st)
            #expect(st.st_mode & 0o777 == 0o600)
        }
        _ = try ProcessRunner.run("/usr/bin/openssl", ["genpkey", "-algorithm", "ed25519", "-out", dir.child("ci.key")])
        _ = try ProcessRunner.run("/usr/bin/openssl", ["pkey", "-in", dir.child("ci.key"), "-pubout", "-out", dir.child("ci.pub")])
        try """
            keys:
              alice: alice.pub
              bob: bob.pub
              ci: ci.pub
            environments:
              staging:    {threshold: 1, keys: [ci, alice]}
              production: {threshold: 2, keys: [alice, bob, ci], rollbackThreshold: 1}
            """.write(toFile: dir.child("trust.yaml"), atomically: false, encoding: .utf8)
        try writeManifest(dir)

        #expect(try baton(["manifest", "sign", "web-v2.json", "--key", "alice.key"], in: dir).status == 0)
        let one = try baton(["manifest", "verify", "web-v2.envelope.json", "--trust", "trust.yaml", "--environment", "production", "--host", "web-1"], in: dir)
        expectOneLineError(one, code: "threshold_not_met", status: 1)
        #expect(one.stdout.isEmpty)

        let again = try baton(["manifest", "sign", "web-v2.envelope.json", "--key", "alice.key"], in: dir)
        #expect(again.stdout.contains("nothing added"))
        #expect(try baton(["manifest", "sign", "web-v2.envelope.json", "--key", "ci.key"], in: dir).status == 0)
        let two = try baton(["manifest", "verify", "web-v2.envelope.json", "--trust", "trust.yaml", "--environment", "production", "--host", "web-1"], in: dir)
        #expect(two.status == 0, "\(two.stderr)")
        #expect(two.stdout.contains("release:     v2"))
        #expect(two.stdout.contains("signed by:   alice"))
        #expect(two.stdout.contains("signed by:   ci"))
        #expect(two.stdout.contains("verdict:     OK (2 of 2 required signature(s))"))
        let asJSON = try baton(
            ["manifest", "verify", "web-v2.envelope.json", "--trust", "trust.yaml", "--environment", "production", "--json"], in: dir)
        let verdict = try #require(try JSONSerialization.jsonObject(with: Data(asJSON.stdout.utf8)) as? [String: Any], "\(asJSON.stdout)")
        #expect(verdict["ok"] as? Bool == true && verdict["requiredSignatures"] as? Int == 2)
        #expect((verdict["manifest"] as? [String: Any])?["release"] as? String == "v2")
        let envelope = try Envelope.parse(Data(contentsOf: URL(fileURLWithPath: dir.child("web-v2.envelope.json"))))
        #expect(envelope.signatures.count == 2)
    }

    /// The signed vector whose first 'hooks' hides behind 512 levels of nesting: the old
    /// scanner gave up there and verify printed OK for the first-member reading.
    @Test func aDuplicateBehindDeepNestingIsNeitherVerifiedNorSigned() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let vectors = #filePath.components(separatedBy: "/Tests/")[0] + "/Protocol/vectors"
        let vector = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(
            fileURLWithPath: vectors + "/cases/invalid-manifest-duplicate-member-past-deep-nesting.json"))) as? [String: Any])
        let envelope = try JSONSerialization.data(withJSONObject: try #require(vector["envelope"]))
        try envelope.write(to: URL(fileURLWithPath: dir.child("deep.envelope.json")))

        let verified = try baton(
            ["manifest", "verify", "deep.envelope.json", "--trust", vectors + "/trust.yaml", "--environment", "staging", "--host", "web-1"],
            in: dir)
        expectOneLineError(verified, code: "invalid_manifest", status: 1)
        #expect(verified.stderr.contains("deeper than 32 levels in padding"), "\(verified.stderr)")
        #expect(!verified.stdout.contains("verdict:"), "\(verified.stdout)")

        // Nor will anyone be asked to sign those bytes.
        try Data(try Envelope.parse(envelope).payload).write(to: URL(fileURLWithPath: dir.child("deep.json")))
        _ = try baton(["keys", "generate", "alice"], in: dir)
        expectOneLineError(try baton(["manifest", "sign", "deep.json", "--key", "alice.key"], in: dir), code: "invalid_manifest", status: 2)
    }

    @Test func badInputGetsOneClearLine() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        _ = try baton(["keys", "generate", "alice"], in: dir)
        try "keys:\n  alice: alice.pub\nenvironments:\n  staging: {threshold: 1, keys: [alice]}\n"
            .write(toFile: dir.child("trust.yaml"), atomically: false, encoding: .utf8)
        try writeManifest(dir, environment: "staging")
        _ = try baton(["manifest", "sign", "web-v2.json", "--key", "alice.key"], in: dir)

        // A missing file.
        expectOneLineError(try baton(["manifest", "sign", "missing.json", "--key", "alice.key"], in: dir), code: "file_not_found", status: 2)
        expectOneLineError(try baton(["manifest", "sign", "web-v2.json", "--key", "missing.key"], in: dir), code: "file_not_found", status: 2)
        expectOneLineError(
            try baton(["manifest", "verify", "web-v2.envelope.json", "--trust", "nope.yaml", "--environment", "staging"], in: dir),
            code: "key_unreadable", status: 2)
        // A wrong key type.
        _ = try ProcessRunner.run(
            "/usr/bin/openssl", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", dir.child("ec.key")])
        expectOneLineError(try baton(["manifest", "sign", "web-v2.json", "--key", "ec.key"], in: dir), code: "wrong_key_type", status: 2)
        expectOneLineError(try baton(["keys", "id", "ec.key"], in: dir), code: "wrong_key_type", status: 2)
        // A corrupt envelope.
        try "{\"payload\": \"!!\", \"payloadType\": \"x\", \"signatures\": []}".write(
            toFile: dir.child("corrupt.json"), atomically: false, encoding: .utf8)
        expectOneLineError(
            try baton(["manifest", "verify", "corrupt.json", "--trust", "trust.yaml", "--environment", "staging"], in: dir),
            code: "malformed", status: 1)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: dir.child("web-v2.envelope.json")))
        let text = String(decoding: bytes, as: UTF8.self)
        bytes = Data(text.replacingOccurrences(of: "\"sig\" : \"", with: "\"sig\" : \"AAAA").utf8)
        try bytes.write(to: URL(fileURLWithPath: dir.child("tampered.json")))
        let tampered = try baton(["manifest", "verify", "tampered.json", "--trust", "trust.yaml", "--environment", "staging"], in: dir)
        #expect(tampered.status == 1)
        #expect(tampered.stderr.hasPrefix("error: signature_invalid") || tampered.stderr.hasPrefix("error: malformed"), "\(tampered.stderr)")
        // An unknown environment.
        expectOneLineError(
            try baton(["manifest", "verify", "web-v2.envelope.json", "--trust", "trust.yaml", "--environment", "prod"], in: dir),
            code: "unknown_environment", status: 2)
        // An invalid manifest is never signed.
        try "{\"app\": \"../etc\"}".write(toFile: dir.child("bad.json"), atomically: false, encoding: .utf8)
        expectOneLineError(try baton(["manifest", "sign", "bad.json", "--key", "alice.key"], in: dir), code: "invalid_manifest", status: 2)
        // Usage errors.
        expectOneLineError(try baton(["keys", "generate"], in: dir), code: "usage", status: 2)
        expectOneLineError(try baton(["keys", "generate", "Bad/Name"], in: dir), code: "invalid_name", status: 2)
        expectOneLineError(try baton(["keys", "generate", "alice"], in: dir), code: "file_exists", status: 2)
    }
}
