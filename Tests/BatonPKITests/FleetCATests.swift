import BatonPKI
import BatonTestSupport
import Foundation
import Testing

@Suite("Fleet CA")
struct FleetCATests {
    @Test("creates ca.pem and a 0600 PKCS#8 ca.key that openssl accepts")
    func createsCA() throws {
        let fixture = try PKIFixture()
        defer { fixture.remove() }
        let ca = fixture.ca

        #expect(filePermissions(ca.keyPath) == 0o600)
        #expect(filePermissions(ca.certificatePath) == 0o644)
        #expect(filePermissions(ca.directory) == 0o700)
        #expect(fileText(ca.keyPath).hasPrefix("-----BEGIN PRIVATE KEY-----"))
        #expect(try OpenSSL.run(["pkey", "-in", ca.keyPath, "-noout"]).status == 0)
        #expect(try OpenSSL.verify(ca.certificatePath, caFile: ca.certificatePath).stdout.contains("OK"))

        let text = try OpenSSL.text(ofCertificate: ca.certificatePath)
        #expect(text.contains("Subject: CN = Baton fleet CA"))
        #expect(text.contains("Issuer: CN = Baton fleet CA"))
        #expect(text.contains("ASN1 OID: prime256v1"))
        #expect(text.contains("Signature Algorithm: ecdsa-with-SHA256"))
        #expect(text.contains("X509v3 Basic Constraints: critical\n                CA:TRUE, pathlen:0"))
        #expect(text.contains("X509v3 Key Usage: critical\n                Certificate Sign, CRL Sign"))
        #expect(text.contains("X509v3 Subject Key Identifier"))

        let years = ca.certificate.notValidAfter.timeIntervalSinceNow / (365.25 * 86_400)
        #expect(years > 9.9 && years < 10.1)
        #expect(ca.certificate.notValidBefore < Date())
    }

    @Test("puts the fleet name in the common name")
    func fleetName() throws {
        let fixture = try PKIFixture(name: "prod")
        defer { fixture.remove() }
        #expect(try OpenSSL.text(ofCertificate: fixture.caFile).contains("Subject: CN = Baton fleet CA (prod)"))
        expectPKIError(.invalidName) { () throws(PKIError) in try FleetCA.create(in: fixture.child("other"), name: "no/slashes") }
        expectPKIError(.invalidName) { () throws(PKIError) in
            try FleetCA.create(in: fixture.child("other"), name: String(repeating: "x", count: 41))
        }
    }

    @Test("refuses to overwrite an existing CA, and leaves it intact")
    func refusesOverwrite() throws {
        let fixture = try PKIFixture()
        defer { fixture.remove() }
        let before = fileText(fixture.ca.keyPath)
        expectPKIError(.caExists) { () throws(PKIError) in try FleetCA.create(in: fixture.ca.directory) }
        #expect(fileText(fixture.ca.keyPath) == before)

        // Half a CA counts too.
        let half = fixture.child("half")
        try FileManager.default.createDirectory(atPath: half, withIntermediateDirectories: true)
        try fixture.write("not a key", to: "half/ca.key")
        expectPKIError(.caExists) { () throws(PKIError) in try FleetCA.create(in: half) }
    }

    @Test("loads back the same CA")
    func loads() throws {
        let fixture = try PKIFixture()
        defer { fixture.remove() }
        let loaded = try FleetCA.load(from: fixture.ca.directory)
        #expect(loaded.certificate == fixture.ca.certificate)
        #expect(loaded.certificatePEM == fixture.ca.certificatePEM)
        // And it can issue.
        let credential = try loaded.issueController(name: "ci")
        #expect(credential.certificate.certificate.issuer == fixture.ca.certificate.subject)
    }

    @Test("a missing CA is ca_missing, naming the directory")
    func missing() throws {
        let fixture = try PKIFixture()
        defer { fixture.remove() }
        do {
            _ = try FleetCA.load(from: fixture.child("nowhere"))
            Issue.record("loaded a CA that does not exist")
        } catch {
            #expect(error.code == .caMissing)
            #expect(error.message.contains("nowhere"))
            #expect(error.message.contains("baton pki init"))
        }
        try FileManager.default.removeItem(atPath: fixture.ca.keyPath)
        expectPKIError(.caMissing) { () throws(PKIError) in try FleetCA.load(from: fixture.ca.directory) }
    }

    @Test("a key of another CA is ca_invalid")
    func mismatchedKey() throws {
        let fixture = try PKIFixture()
        defer { fixture.remove() }
        let other = try FleetCA.create(in: fixture.child("other"))
        try FileManager.default.removeItem(atPath: fixture.ca.keyPath)
        try FileManager.default.copyItem(atPath: other.keyPath, toPath: fixture.ca.keyPath)
        expectPKIError(.caInvalid) { () throws(PKIError) in try FleetCA.load(from: fixture.ca.directory) }
    }

    @Test("a leaf certificate is not a CA")
    func leafIsNotCA() throws {
        let fixture = try PKIFixture()
        defer { fixture.remove() }
        let credential = try fixture.ca.issueController(name: "ci")
        let fake = fixture.child("fake")
        try FileManager.default.createDirectory(atPath: fake, withIntermediateDirectories: true)
        try fixture.write(credential.certificate.pem, to: "fake/ca.pem")
        try fixture.write(credential.key.pem, to: "fake/ca.key")
        expectPKIError(.caInvalid) { () throws(PKIError) in try FleetCA.load(from: fake) }
    }

    @Test("an Ed25519 or RSA key is wrong_key_type; garbage is bad_pem", arguments: ["ed25519", "rsa"])
    func wrongKeyType(algorithm: String) throws {
        let fixture = try PKIFixture()
        defer { fixture.remove() }
        try FileManager.default.removeItem(atPath: fixture.ca.keyPath)
        #expect(try OpenSSL.run(["genpkey", "-algorithm", algorithm, "-out", fixture.ca.keyPath]).status == 0)
        expectPKIError(.wrongKeyType) { () throws(PKIError) in try FleetCA.load(from: fixture.ca.directory) }
        expectPKIError(.wrongKeyType) { () throws(PKIError) in try IdentityKey(pem: fileText(fixture.ca.keyPath)) }
    }

    @Test("a P-384 key is wrong_key_type, SEC1 P-256 is accepted")
    func ecKeys() throws {
        let fixture = try PKIFixture()
        defer { fixture.remove() }
        let p384 = fixture.child("p384.key"), sec1 = fixture.child("sec1.key")
        #expect(try OpenSSL.run(["ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", p384]).status == 0)
        #expect(try OpenSSL.run(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", sec1]).status == 0)
        do {
            _ = try IdentityKey(pem: fileText(p384))
            Issue.record("accepted a P-384 key")
        } catch {
            #expect(error.code == .wrongKeyType)
            #expect(error.message.contains("ECDSA P-384"))
        }
        #expect(fileText(sec1).hasPrefix("-----BEGIN EC PRIVATE KEY-----"))
        _ = try IdentityKey(pem: fileText(sec1))
    }

    @Test("malformed PEM is bad_pem", arguments: [
        "", "hello", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    ])
    func badPEM(text: String) throws {
        let fixture = try PKIFixture()
        defer { fixture.remove() }
        expectPKIError(.badPEM) { () throws(PKIError) in try IdentityKey(pem: text) }
        expectPKIError(.badPEM) { () throws(PKIError) in try PeerCertificate(pem: text) }
        expectPKIError(.badPEM) { () throws(PKIError) in try SigningRequest(pem: text) }
        try FileManager.default.removeItem(atPath: fixture.ca.certificatePath)
        try fixture.write(text, to: "ca/ca.pem")
        expectPKIError(.badPEM) { () throws(PKIError) in try FleetCA.load(from: fixture.ca.directory) }
    }

    @Test("an expired CA cannot issue")
    func expiredCA() throws {
        let fixture = try PKIFixture()
        defer { fixture.remove() }
        let old = try FleetCA.create(in: fixture.child("old"), validityDays: 1, now: Date(timeIntervalSinceNow: -3 * 86_400))
        expectPKIError(.caExpired) { () throws(PKIError) in try old.issueAgent(hostID: "web-1") }
    }
}
