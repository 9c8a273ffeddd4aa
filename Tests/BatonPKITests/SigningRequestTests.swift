import BatonPKI
import BatonTestSupport
import Foundation
import Testing

@Suite("CSRs: made on the host, signed by the CA")
struct SigningRequestTests {
    /// A CSR for `identity` written as `<dir>/<name>.csr` with its key.
    func makeRequest(
        _ fixture: PKIFixture, _ identity: PeerIdentity, dns: [String] = [], ip: [String] = []
    ) throws -> (request: SigningRequest, paths: (request: String, key: String)) {
        let key = IdentityKey()
        let request = try SigningRequest(
            identity: identity, names: AlternativeNames(dnsNames: dns, ipAddresses: ip), key: key)
        return (request, try request.write(key: key, to: fixture.child("host")))
    }

    /// A CSR made by openssl, for what Baton itself would never write.
    func opensslRequest(_ fixture: PKIFixture, keyType: [String] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"], _ extensions: [String]) throws -> SigningRequest {
        let csr = fixture.child("openssl-\(UUID().uuidString).csr")
        let result = try OpenSSL.run(
            ["req", "-new", "-nodes", "-keyout", csr + ".key", "-subj", "/CN=whatever", "-out", csr] + keyType
                + extensions.flatMap { ["-addext", $0] })
        #expect(result.status == 0, "\(result.stderr)")
        return try SigningRequest(pem: fileText(csr))
    }

    @Test("csr then sign-csr gives a certificate that verifies, for the key that stayed on the host")
    func flow() throws {
        let fixture = try PKIFixture()
        defer { fixture.remove() }
        let (_, paths) = try makeRequest(fixture, .agent(hostID: "web-2"), dns: ["web-2.example.com"], ip: ["192.0.2.4", "2001:db8::4"])
        #expect(paths.key == fixture.child("host/web-2.key"))
        #expect(paths.request == fixture.child("host/web-2.csr"))
        #expect(filePermissions(paths.key) == 0o600)
        #expect(filePermissions(paths.request) == 0o644)

        let check = try OpenSSL.run(["req", "-in", paths.request, "-noout", "-verify", "-text"])
        #expect(check.status == 0)
        #expect((check.stdout + check.stderr).contains("verify OK"))
        #expect(check.stdout.contains("Requested Extensions:"))
        #expect(check.stdout.contains("URI:baton://agent/web-2, DNS:web-2.example.com, IP Address:192.0.2.4, IP Address:2001:DB8:0:0:0:0:0:4"))

        // The CA side: read the file, sign, write.
        let request = try SigningRequest(pem: try PEMFile.read(paths.request, what: "CSR"))
        let certificate = try fixture.ca.sign(request, as: .agent)
        let certificatePath = fixture.child("host/web-2.pem")
        try PEMFile.write(certificate.pem, to: certificatePath, kind: .publicMaterial)

        #expect(try OpenSSL.verify(certificatePath, caFile: fixture.caFile).stdout == "\(certificatePath): OK\n")
        let text = try OpenSSL.text(ofCertificate: certificatePath)
        #expect(text.contains("URI:baton://agent/web-2, DNS:web-2.example.com, DNS:web-2.agents.baton.invalid, IP Address:192.0.2.4, IP Address:2001:DB8:0:0:0:0:0:4"))
        #expect(text.contains("TLS Web Server Authentication, TLS Web Client Authentication"))
        #expect(text.contains("X509v3 Key Usage: critical\n                Digital Signature\n"))
        let fromKey = try OpenSSL.run(["pkey", "-in", paths.key, "-pubout"]).stdout
        let fromCertificate = try OpenSSL.run(["x509", "-in", certificatePath, "-pubkey", "-noout"]).stdout
        #expect(fromKey == fromCertificate)
        #expect(certificate.identity == .agent(hostID: "web-2"))
        #expect(abs(certificate.notValidAfter.timeIntervalSinceNow - 397 * 86_400) < 60)
    }

    @Test("a controller CSR signed as controller")
    func controllerCSR() throws {
        let fixture = try PKIFixture()
        defer { fixture.remove() }
        let (request, _) = try makeRequest(fixture, .controller(name: "alice"))
        let certificate = try fixture.ca.sign(request, as: .controller, validityDays: 30)
        #expect(certificate.identity == .controller(name: "alice"))
        #expect(certificate.daysUntilExpiry() == 29)
        let path = try fixture.write(certificate.pem, to: "alice.pem")
        #expect(try OpenSSL.verify(path, caFile: fixture.caFile, ["-purpose", "sslclient"]).status == 0)
        #expect(!(try OpenSSL.text(ofCertificate: path)).contains("TLS Web Server Authentication"))
    }

    @Test("a CSR with a tampered signature is csr_signature_invalid")
    func tamperedSignature() throws {
        let fixture = try PKIFixture()
        defer { fixture.remove() }
        let (request, _) = try makeRequest(fixture, .agent(hostID: "web-1"))
        var der = try derBytes(ofPEM: request.pem)
        der[der.count - 1] ^= 0x01  // the last byte of the signature's s value
        let tampered = try SigningRequest(pem: pem("CERTIFICATE REQUEST", der: der))
        #expect(!tampered.isSignatureValid)
        expectPKIError(.csrSignatureInvalid) { () throws(PKIError) in try fixture.ca.sign(tampered, as: .agent) }
    }

    @Test("a CSR changed after signing is csr_signature_invalid")
    func tamperedContent() throws {
        let fixture = try PKIFixture()
        defer { fixture.remove() }
        let (request, _) = try makeRequest(fixture, .agent(hostID: "web-1"), ip: ["10.0.0.1"])
        var der = try derBytes(ofPEM: request.pem)
        // Re-point the request at another address: 10.0.0.1 -> 10.0.0.2.
        let address: [UInt8] = [0x04, 0x0A, 0x00, 0x00, 0x01]
        let at = try #require((0...(der.count - address.count)).first { Array(der[$0..<$0 + address.count]) == address })
        der[at + 4] = 0x02
        let tampered = try SigningRequest(pem: pem("CERTIFICATE REQUEST", der: der))
        expectPKIError(.csrSignatureInvalid) { () throws(PKIError) in try fixture.ca.sign(tampered, as: .agent) }
    }

    @Test("an agent CSR asking for a controller identity is refused, and the reverse")
    func roleMismatch() throws {
        let fixture = try PKIFixture()
        defer { fixture.remove() }
        let (asController, _) = try makeRequest(fixture, .controller(name: "admin"))
        do {
            _ = try fixture.ca.sign(asController, as: .agent)
            Issue.record("signed a controller identity as an agent")
        } catch {
            #expect(error.code == .csrIdentityMismatch)
            #expect(error.message.contains("baton://controller/admin"))
        }
        let (asAgent, _) = try makeRequest(fixture, .agent(hostID: "web-1"))
        expectPKIError(.csrIdentityMismatch) { () throws(PKIError) in try fixture.ca.sign(asAgent, as: .controller) }
    }

    @Test("a CSR must ask for exactly one valid baton:// identity")
    func identityCount() throws {
        let fixture = try PKIFixture()
        defer { fixture.remove() }
        let none = try opensslRequest(fixture, ["subjectAltName=DNS:web-1.example.com"])
        #expect(none.isSignatureValid)
        expectPKIError(.csrIdentityMissing) { () throws(PKIError) in try fixture.ca.sign(none, as: .agent) }
        let noExtensions = try opensslRequest(fixture, [])
        expectPKIError(.csrIdentityMissing) { () throws(PKIError) in try fixture.ca.sign(noExtensions, as: .agent) }
        let two = try opensslRequest(fixture, ["subjectAltName=URI:baton://agent/web-1,URI:baton://agent/web-2"])
        expectPKIError(.csrIdentityAmbiguous) { () throws(PKIError) in try fixture.ca.sign(two, as: .agent) }
        // A second identity in upper case is still a second identity.
        let sneaky = try opensslRequest(fixture, ["subjectAltName=URI:baton://agent/web-1,URI:BATON://controller/admin"])
        expectPKIError(.csrIdentityAmbiguous) { () throws(PKIError) in try fixture.ca.sign(sneaky, as: .agent) }
        let badName = try opensslRequest(fixture, ["subjectAltName=URI:baton://agent/../etc"])
        expectPKIError(.invalidName) { () throws(PKIError) in try fixture.ca.sign(badName, as: .agent) }
        let badRole = try opensslRequest(fixture, ["subjectAltName=URI:baton://admin/web-1"])
        expectPKIError(.invalidName) { () throws(PKIError) in try fixture.ca.sign(badRole, as: .agent) }
    }

    @Test("names Baton never certifies are refused")
    func unsupportedNames() throws {
        let fixture = try PKIFixture()
        defer { fixture.remove() }
        let email = try opensslRequest(fixture, ["subjectAltName=URI:baton://agent/web-1,email:root@example.com"])
        expectPKIError(.csrUnsupportedName) { () throws(PKIError) in try fixture.ca.sign(email, as: .agent) }
        let foreignURI = try opensslRequest(fixture, ["subjectAltName=URI:baton://agent/web-1,URI:spiffe://example/x"])
        expectPKIError(.csrUnsupportedName) { () throws(PKIError) in try fixture.ca.sign(foreignURI, as: .agent) }
        let wildcard = try opensslRequest(fixture, ["subjectAltName=URI:baton://agent/web-1,DNS:*.example.com"])
        expectPKIError(.invalidDNSName) { () throws(PKIError) in try fixture.ca.sign(wildcard, as: .agent) }
        let controllerWithDNS = try opensslRequest(fixture, ["subjectAltName=URI:baton://controller/ci,DNS:ci.example.com"])
        expectPKIError(.csrUnsupportedName) { () throws(PKIError) in try fixture.ca.sign(controllerWithDNS, as: .controller) }
    }

    @Test("nothing but the identity and DNS/IP names is copied from a CSR")
    func extensionsNotCopied() throws {
        let fixture = try PKIFixture()
        defer { fixture.remove() }
        let greedy = try opensslRequest(fixture, [
            "subjectAltName=URI:baton://agent/web-1,DNS:web-1.example.com",
            "basicConstraints=critical,CA:TRUE",
            "keyUsage=critical,keyCertSign,cRLSign",
            "extendedKeyUsage=codeSigning",
            "nameConstraints=permitted;DNS:example.com",
        ])
        let path = try fixture.write(try fixture.ca.sign(greedy, as: .agent).pem, to: "web-1.pem")
        let text = try OpenSSL.text(ofCertificate: path)
        #expect(text.contains("Subject: CN = web-1\n"))
        #expect(text.contains("CA:FALSE"))
        #expect(!text.contains("CA:TRUE"))
        #expect(!text.contains("Certificate Sign"))
        #expect(!text.contains("Code Signing"))
        #expect(!text.contains("Name Constraints"))
        #expect(text.contains("URI:baton://agent/web-1, DNS:web-1.example.com, DNS:web-1.agents.baton.invalid\n"))
        #expect(try OpenSSL.verify(path, caFile: fixture.caFile).status == 0)
    }

    @Test("CSR keys other than P-256 are wrong_key_type", arguments: [
        ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"], ["-newkey", "rsa:2048"], ["-newkey", "ed25519"],
    ])
    func wrongKeyType(keyType: [String]) throws {
        let fixture = try PKIFixture()
        defer { fixture.remove() }
        let request = try opensslRequest(fixture, keyType: keyType, ["subjectAltName=URI:baton://agent/web-1"])
        expectPKIError(.wrongKeyType) { () throws(PKIError) in try fixture.ca.sign(request, as: .agent) }
    }

    @Test("a certificate where a CSR belongs is bad_pem")
    func certificateIsNotACSR() throws {
        let fixture = try PKIFixture()
        defer { fixture.remove() }
        do {
            _ = try SigningRequest(pem: fixture.ca.certificatePEM)
            Issue.record("parsed a certificate as a CSR")
        } catch {
            #expect(error.code == .badPEM)
            #expect(error.message.contains("found CERTIFICATE"))
        }
        expectPKIError(.fileNotFound) { () throws(PKIError) in try PEMFile.read(fixture.child("missing.csr"), what: "CSR") }
    }
}
