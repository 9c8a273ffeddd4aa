import BatonTestSupport
import Foundation
import Testing

/// `baton pki ...` and `batond csr`, run as an operator would.
@Suite("baton pki and batond csr")
struct PKICommandTests {
    /// Expects a failed run: one line `error: <code>: ...` on stderr, the exit status, nothing on stdout.
    func expectFailure(
        _ result: ProcessResult, code: String, status: Int32 = 2, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(result.status == status, "\(result.stderr)", sourceLocation: sourceLocation)
        #expect(!result.signalled, sourceLocation: sourceLocation)
        #expect(result.stderr.hasPrefix("error: \(code): "), "\(result.stderr)", sourceLocation: sourceLocation)
        #expect(result.stderr.filter { $0 == "\n" }.count == 1, "\(result.stderr)", sourceLocation: sourceLocation)
        #expect(result.stdout.isEmpty, "\(result.stdout)", sourceLocation: sourceLocation)
    }

    @Test("init, issue agent and issue controller give certificates openssl verifies")
    func issue() throws {
        let dir = try TemporaryDirectory(prefix: "baton-pki-cli")
        defer { dir.remove() }
        let ca = dir.child("ca"), out = dir.child("out")

        let made = try ProcessRunner.runTool("baton", ["pki", "init", ca, "--name", "test"])
        #expect(made.status == 0, "\(made.stderr)")
        #expect(made.stdout.contains("wrote \(ca)/ca.key"))
        #expect(made.stdout.contains("wrote \(ca)/ca.pem"))
        #expect(made.stdout.contains("next: baton pki issue agent"))
        #expect(filePermissions("\(ca)/ca.key") == 0o600)
        #expect(try OpenSSL.run(["pkey", "-in", "\(ca)/ca.key", "-noout"]).status == 0)

        let agent = try ProcessRunner.runTool("baton", [
            "pki", "issue", "agent", "web-1", "--dns", "web-1.example.com", "web-1", "--ip", "10.0.0.7", "fd00::7",
            "--ca", ca, "--out", out, "--days", "90",
        ])
        #expect(agent.status == 0, "\(agent.stderr)")
        #expect(agent.stdout.contains("wrote \(out)/web-1.key (private key, mode 0600)"))
        #expect(agent.stdout.contains("wrote \(out)/web-1.pem (baton://agent/web-1, DNS web-1.example.com web-1 web-1.agents.baton.invalid, IP 10.0.0.7 fd00::7, valid until "))
        #expect(filePermissions("\(out)/web-1.key") == 0o600)
        #expect(try OpenSSL.verify("\(out)/web-1.pem", caFile: "\(ca)/ca.pem").stdout == "\(out)/web-1.pem: OK\n")
        let text = try OpenSSL.text(ofCertificate: "\(out)/web-1.pem")
        #expect(text.contains("URI:baton://agent/web-1, DNS:web-1.example.com, DNS:web-1, DNS:web-1.agents.baton.invalid, IP Address:10.0.0.7, IP Address:FD00:0:0:0:0:0:0:7"))
        #expect(text.contains("Issuer: CN = Baton fleet CA (test)"))

        // --ca and --out default to the current directory.
        let controller = try ProcessRunner.runTool("baton", ["pki", "issue", "controller", "ci"], currentDirectory: ca)
        #expect(controller.status == 0, "\(controller.stderr)")
        #expect(try OpenSSL.verify("\(ca)/ci.pem", caFile: "\(ca)/ca.pem", ["-purpose", "sslclient"]).status == 0)
        #expect(try OpenSSL.text(ofCertificate: "\(ca)/ci.pem").contains("URI:baton://controller/ci"))
    }

    @Test("batond csr on the host, baton pki sign-csr on the CA")
    func csrFlow() throws {
        let dir = try TemporaryDirectory(prefix: "baton-pki-cli")
        defer { dir.remove() }
        let ca = dir.child("ca"), host = dir.child("host")
        #expect(try ProcessRunner.runTool("baton", ["pki", "init", ca]).status == 0)

        let csr = try ProcessRunner.runTool("batond", [
            "csr", "--host-id", "web-2", "--dns", "web-2.example.com", "--ip", "192.0.2.4", "--out", host,
        ])
        #expect(csr.status == 0, "\(csr.stderr)")
        #expect(csr.stdout.contains("wrote \(host)/web-2.key (private key, mode 0600"))
        #expect(csr.stdout.contains("wrote \(host)/web-2.csr (request for baton://agent/web-2, DNS web-2.example.com, IP 192.0.2.4)"))
        #expect(filePermissions("\(host)/web-2.key") == 0o600)
        #expect(try OpenSSL.run(["req", "-in", "\(host)/web-2.csr", "-noout", "-verify"]).status == 0)

        let signed = try ProcessRunner.runTool("baton", ["pki", "sign-csr", "\(host)/web-2.csr", "--role", "agent", "--ca", ca])
        #expect(signed.status == 0, "\(signed.stderr)")
        #expect(signed.stdout.contains("wrote \(host)/web-2.pem (baton://agent/web-2, DNS web-2.example.com web-2.agents.baton.invalid, IP 192.0.2.4, valid until "))
        #expect(try OpenSSL.verify("\(host)/web-2.pem", caFile: "\(ca)/ca.pem").stdout == "\(host)/web-2.pem: OK\n")
        let fromKey = try OpenSSL.run(["pkey", "-in", "\(host)/web-2.key", "-pubout"]).stdout
        let fromCertificate = try OpenSSL.run(["x509", "-in", "\(host)/web-2.pem", "-pubkey", "-noout"]).stdout
        #expect(fromKey == fromCertificate)

        // An agent CSR is never signed as a controller, and nothing is written.
        expectFailure(
            try ProcessRunner.runTool("baton", ["pki", "sign-csr", "\(host)/web-2.csr", "--role", "controller", "--ca", ca, "--out", dir.child("x.pem")]),
            code: "csr_identity_mismatch")
        #expect(!FileManager.default.fileExists(atPath: dir.child("x.pem")))
        // Signing again would overwrite web-2.pem.
        expectFailure(
            try ProcessRunner.runTool("baton", ["pki", "sign-csr", "\(host)/web-2.csr", "--role", "agent", "--ca", ca]),
            code: "file_exists")
        // A host key is never overwritten.
        expectFailure(try ProcessRunner.runTool("batond", ["csr", "--host-id", "web-2", "--out", host]), code: "file_exists")
    }

    @Test("keys are 0600 and certificates 0644 whatever the umask", arguments: ["000", "077"])
    func modes(umask: String) throws {
        let dir = try TemporaryDirectory(prefix: "baton-pki-cli")
        defer { dir.remove() }
        func run(_ tool: String, _ arguments: [String]) throws {
            let result = try ProcessRunner.run(
                "/bin/sh", ["-c", "umask \(umask) && exec \"$@\"", "sh", ProcessRunner.executable(tool)] + arguments)
            #expect(result.status == 0, "\(result.stderr)")
        }
        try run("baton", ["pki", "init", dir.child("ca")])
        try run("baton", ["pki", "issue", "controller", "ci", "--ca", dir.child("ca"), "--out", dir.child("out")])
        try run("batond", ["csr", "--host-id", "web-1", "--out", dir.child("host")])
        for key in ["ca/ca.key", "out/ci.key", "host/web-1.key"] {
            #expect(filePermissions(dir.child(key)) == 0o600, "\(key)")
        }
        for file in ["ca/ca.pem", "out/ci.pem", "host/web-1.csr"] {
            #expect(filePermissions(dir.child(file)) == 0o644, "\(file)")
        }
    }

    @Test("init and issue --out create missing parent directories, 0700")
    func missingParents() throws {
        let dir = try TemporaryDirectory(prefix: "baton-pki-cli")
        defer { dir.remove() }
        // As the README types them in an empty directory: neither pki/ nor hosts/ exists.
        let ca = dir.child("pki/ca"), out = dir.child("hosts/web-1/tls")
        let made = try ProcessRunner.runTool("baton", ["pki", "init", ca])
        #expect(made.status == 0, "\(made.stderr)")
        let issued = try ProcessRunner.runTool("baton", ["pki", "issue", "agent", "web-1", "--ca", ca, "--out", out])
        #expect(issued.status == 0, "\(issued.stderr)")
        #expect(try OpenSSL.verify("\(out)/web-1.pem", caFile: "\(ca)/ca.pem").status == 0)
        for made in ["pki", "pki/ca", "hosts", "hosts/web-1", "hosts/web-1/tls"] {
            #expect(filePermissions(dir.child(made)) == 0o700, "\(made)")
        }
        // A trailing slash and an existing parent are fine; a file in the way is a clear error.
        #expect(try ProcessRunner.runTool("baton", ["pki", "issue", "controller", "ops", "--ca", ca, "--out", dir.child("ops/")]).status == 0)
        try "x".write(toFile: dir.child("plain"), atomically: false, encoding: .utf8)
        let blocked = try ProcessRunner.runTool("baton", ["pki", "issue", "controller", "ci", "--ca", ca, "--out", dir.child("plain/tls")])
        expectFailure(blocked, code: "io_error", status: 1)
        #expect(blocked.stderr.contains("is not a directory"), "\(blocked.stderr)")
    }

    @Test("bad input: one line, a stable code, exit 2")
    func badInput() throws {
        let dir = try TemporaryDirectory(prefix: "baton-pki-cli")
        defer { dir.remove() }
        let ca = dir.child("ca")

        expectFailure(try ProcessRunner.runTool("baton", ["pki", "issue", "agent", "web-1", "--ca", dir.child("nowhere")]), code: "ca_missing")
        expectFailure(try ProcessRunner.runTool("baton", ["pki", "issue", "controller", "ci"], currentDirectory: dir.path), code: "ca_missing")

        #expect(try ProcessRunner.runTool("baton", ["pki", "init", ca]).status == 0)
        expectFailure(try ProcessRunner.runTool("baton", ["pki", "init", ca]), code: "ca_exists")
        expectFailure(try ProcessRunner.runTool("baton", ["pki", "issue", "agent", "Web_1!", "--ca", ca]), code: "invalid_name")
        expectFailure(try ProcessRunner.runTool("baton", ["pki", "issue", "controller", "../ci", "--ca", ca]), code: "invalid_name")
        expectFailure(try ProcessRunner.runTool("baton", ["pki", "issue", "agent", "web-1", "--ip", "10.0.0.300", "--ca", ca]), code: "invalid_ip_address")
        expectFailure(try ProcessRunner.runTool("baton", ["pki", "issue", "agent", "web-1", "--dns", "*.example.com", "--ca", ca]), code: "invalid_dns_name")
        expectFailure(try ProcessRunner.runTool("baton", ["pki", "issue", "agent", "web-1", "--days", "0", "--ca", ca]), code: "invalid_validity")
        expectFailure(try ProcessRunner.runTool("baton", ["pki", "sign-csr", dir.child("missing.csr"), "--role", "agent", "--ca", ca]), code: "file_not_found")

        let garbage = dir.child("garbage.csr")
        try "hello".write(toFile: garbage, atomically: false, encoding: .utf8)
        expectFailure(try ProcessRunner.runTool("baton", ["pki", "sign-csr", garbage, "--role", "agent", "--ca", ca]), code: "bad_pem")
        // A certificate is not a CSR.
        expectFailure(try ProcessRunner.runTool("baton", ["pki", "sign-csr", "\(ca)/ca.pem", "--role", "agent", "--ca", ca]), code: "bad_pem")

        // A CA key of the wrong type.
        let wrongKey = dir.child("wrong-key")
        try FileManager.default.createDirectory(atPath: wrongKey, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: "\(ca)/ca.pem", toPath: "\(wrongKey)/ca.pem")
        #expect(try OpenSSL.run(["genpkey", "-algorithm", "ed25519", "-out", "\(wrongKey)/ca.key"]).status == 0)
        expectFailure(try ProcessRunner.runTool("baton", ["pki", "issue", "controller", "ci", "--ca", wrongKey]), code: "wrong_key_type")

        expectFailure(try ProcessRunner.runTool("batond", ["csr", "--host-id", "Bad Host", "--out", dir.path]), code: "invalid_name")
        expectFailure(try ProcessRunner.runTool("batond", ["csr", "--host-id", "web-3", "--ip", "nope", "--out", dir.path]), code: "invalid_ip_address")
        #expect(!FileManager.default.fileExists(atPath: dir.child("web-3.key")))

        // argument-parser's own errors are one line too.
        let badRole = try ProcessRunner.runTool("baton", ["pki", "sign-csr", garbage, "--role", "admin", "--ca", ca])
        #expect(badRole.status == 2)
        #expect(badRole.stderr.hasPrefix("error: usage: "))
        #expect(badRole.stderr.filter { $0 == "\n" }.count == 1)
    }
}
