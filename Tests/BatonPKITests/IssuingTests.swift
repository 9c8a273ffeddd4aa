import BatonPKI
import BatonTestSupport
import Foundation
import Testing

@Suite("Issuing agent and controller certificates")
struct IssuingTests {
    @Test("an agent certificate verifies with openssl and carries identity, DNS, IPv4 and IPv6 names")
    func agent() throws {
        let fixture = try PKIFixture()
        defer { fixture.remove() }
        let credential = try fixture.ca.issueAgent(
            hostID: "web-1", dnsNames: ["web-1.prod.example.com", "WEB-1.example.com"], ipAddresses: ["10.0.0.7", "fd00::7"])
        let paths = try credential.write(to: fixture.child("out"))
        #expect(paths.certificate == fixture.child("out/web-1.pem"))
        #expect(paths.key == fixture.child("out/web-1.key"))
        #expect(filePermissions(paths.key) == 0o600)
        #expect(filePermissions(paths.certificate) == 0o644)
        #expect(try OpenSSL.run(["pkey", "-in", paths.key, "-noout"]).status == 0)

        #expect(try OpenSSL.verify(paths.certificate, caFile: fixture.caFile).stdout == "\(paths.certificate): OK\n")
        #expect(try OpenSSL.verify(paths.certificate, caFile: fixture.caFile, ["-purpose", "sslserver"]).status == 0)
        #expect(try OpenSSL.verify(paths.certificate, caFile: fixture.caFile, ["-purpose", "sslclient"]).status == 0)

        let text = try OpenSSL.text(ofCertificate: paths.certificate)
        #expect(text.contains("Subject: CN = web-1"))
        #expect(text.contains("Issuer: CN = Baton fleet CA"))
        #expect(text.contains(
            "URI:baton://agent/web-1, DNS:web-1.prod.example.com, DNS:web-1.example.com, DNS:web-1.agents.baton.invalid, IP Address:10.0.0.7, IP Address:FD00:0:0:0:0:0:0:7"))
        #expect(text.contains("X509v3 Extended Key Usage: \n                TLS Web Server Authentication, TLS Web Client Authentication"))
        #expect(text.contains("X509v3 Key Usage: critical\n                Digital Signature\n"))
        #expect(text.contains("X509v3 Basic Constraints: critical\n                CA:FALSE"))
        #expect(text.contains("X509v3 Authority Key Identifier"))
        #expect(text.contains("ASN1 OID: prime256v1"))

        // The key in the key file is the certificate's.
        let fromKey = try OpenSSL.run(["pkey", "-in", paths.key, "-pubout"]).stdout
        let fromCertificate = try OpenSSL.run(["x509", "-in", paths.certificate, "-pubkey", "-noout"]).stdout
        #expect(fromKey == fromCertificate)

        #expect(credential.certificate.identity == .agent(hostID: "web-1"))
        #expect(credential.certificate.alternativeNames.dnsNames == ["web-1.prod.example.com", "web-1.example.com", "web-1.agents.baton.invalid"])
        #expect(credential.certificate.alternativeNames.ipAddresses == ["10.0.0.7", "fd00::7"])
    }

    @Test("a controller certificate is for TLS clients only")
    func controller() throws {
        let fixture = try PKIFixture()
        defer { fixture.remove() }
        let paths = try fixture.ca.issueController(name: "ci").write(to: fixture.child("out"))
        #expect(filePermissions(paths.key) == 0o600)
        #expect(try OpenSSL.verify(paths.certificate, caFile: fixture.caFile).stdout.hasSuffix(": OK\n"))
        #expect(try OpenSSL.verify(paths.certificate, caFile: fixture.caFile, ["-purpose", "sslclient"]).status == 0)
        #expect(try OpenSSL.verify(paths.certificate, caFile: fixture.caFile, ["-purpose", "sslserver"]).status != 0)

        let text = try OpenSSL.text(ofCertificate: paths.certificate)
        #expect(text.contains("X509v3 Subject Alternative Name: \n                URI:baton://controller/ci\n"))
        #expect(text.contains("X509v3 Extended Key Usage: \n                TLS Web Client Authentication\n"))
        #expect(!text.contains("TLS Web Server Authentication"))
        #expect(text.contains("X509v3 Key Usage: critical\n                Digital Signature\n"))
    }

    @Test("serial numbers are random, positive and 20 bytes long")
    func serials() throws {
        let fixture = try PKIFixture()
        defer { fixture.remove() }
        var seen = Set<String>()
        for _ in 0..<20 {
            let serial = try fixture.ca.issueController(name: "ci").certificate.serialNumberHex
            #expect(serial.count == 40)
            let first = try #require(UInt8(serial.prefix(2), radix: 16))
            #expect(first & 0x80 == 0 && first != 0)
            seen.insert(serial)
        }
        #expect(seen.count == 20)
    }

    @Test("validity starts a little in the past and lasts the days asked, 397 by default")
    func validity() throws {
        let fixture = try PKIFixture()
        defer { fixture.remove() }
        // Whole seconds, as X.509 times are, so that the day arithmetic is exact.
        let now = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
        let agent = try fixture.ca.issueAgent(hostID: "web-1", now: now).certificate
        #expect(agent.notValidBefore < now.addingTimeInterval(-60))
        #expect(agent.notValidBefore > now.addingTimeInterval(-3600))
        #expect(agent.notValidAfter == now.addingTimeInterval(397 * 86_400))
        #expect(agent.daysUntilExpiry(now: now) == 397)
        #expect(agent.daysUntilExpiry(now: now.addingTimeInterval(1)) == 396)  // rounded down
        #expect(agent.daysUntilExpiry(now: now.addingTimeInterval(400 * 86_400)) < 0)

        let controller = try fixture.ca.issueController(name: "ci", validityDays: 30, now: now).certificate
        #expect(abs(controller.notValidAfter.timeIntervalSince(now) - 30 * 86_400) < 2)

        expectPKIError(.invalidValidity) { () throws(PKIError) in try fixture.ca.issueController(name: "ci", validityDays: 0) }
        expectPKIError(.invalidValidity) { () throws(PKIError) in try fixture.ca.issueAgent(hostID: "a", validityDays: 100_000) }
    }

    @Test("a leaf never outlives its CA")
    func clampedToCA() throws {
        let fixture = try PKIFixture()
        defer { fixture.remove() }
        let short = try FleetCA.create(in: fixture.child("short"), validityDays: 10)
        let leaf = try short.issueAgent(hostID: "web-1", validityDays: 397).certificate
        #expect(leaf.notValidAfter == short.certificate.notValidAfter)
    }

    @Test("host ids and controller names follow the naming rule", arguments: [
        "", "Web-1", "-web", ".web", "web/1", "web 1", "../etc", "wéb", String(repeating: "a", count: 65),
    ])
    func invalidNames(name: String) throws {
        let fixture = try PKIFixture()
        defer { fixture.remove() }
        expectPKIError(.invalidName) { () throws(PKIError) in try fixture.ca.issueAgent(hostID: name) }
        expectPKIError(.invalidName) { () throws(PKIError) in try fixture.ca.issueController(name: name) }
    }

    @Test("valid names at the edges", arguments: ["a", "0", "web-1.prod-eu", String(repeating: "a", count: 63)])
    func validNames(name: String) throws {
        let fixture = try PKIFixture()
        defer { fixture.remove() }
        let certificate = try fixture.ca.issueAgent(hostID: name).certificate
        #expect(certificate.identity == .agent(hostID: name))
        #expect(certificate.alternativeNames.dnsNames == [name + ".agents.baton.invalid"])
        #expect(try fixture.ca.issueController(name: String((name + "_x").prefix(64))).certificate.identity == .controller(name: String((name + "_x").prefix(64))))
    }

    @Test("a host id that cannot be a TLS name is refused for agents", arguments: ["web_1", String(repeating: "a", count: 64), "a..b"])
    func hostIDsThatAreNotTLSNames(name: String) throws {
        let fixture = try PKIFixture()
        defer { fixture.remove() }
        expectPKIError(.invalidName) { () throws(PKIError) in try fixture.ca.issueAgent(hostID: name) }
    }

    @Test("nobody but the CA names an agent identity DNS name")
    func reservedAgentNames() throws {
        let fixture = try PKIFixture()
        defer { fixture.remove() }
        expectPKIError(.invalidDNSName) { () throws(PKIError) in
            try fixture.ca.issueAgent(hostID: "web-1", dnsNames: ["web-2.agents.baton.invalid"])
        }
    }

    @Test("DNS names and IP addresses are validated")
    func invalidAlternativeNames() throws {
        let fixture = try PKIFixture()
        defer { fixture.remove() }
        for dns in ["*.example.com", "-a.example.com", "a..b", "a.example.com.", "under_score.example", "", String(repeating: "a", count: 64)] {
            expectPKIError(.invalidDNSName) { () throws(PKIError) in try fixture.ca.issueAgent(hostID: "web-1", dnsNames: [dns]) }
        }
        for ip in ["10.0.0", "10.0.0.256", "fd00::7%eth0", "example.com", "", "1.2.3.4/24"] {
            expectPKIError(.invalidIPAddress) { () throws(PKIError) in try fixture.ca.issueAgent(hostID: "web-1", ipAddresses: [ip]) }
        }
        let names = try AlternativeNames(dnsNames: ["A.example", "a.example"], ipAddresses: ["::ffff:10.0.0.1", "0:0::1", "::1"])
        #expect(names.dnsNames == ["a.example"])
        #expect(names.ipAddresses == ["::ffff:10.0.0.1", "::1"])
    }

    @Test("never overwrites a key or certificate")
    func noOverwrite() throws {
        let fixture = try PKIFixture()
        defer { fixture.remove() }
        let out = fixture.child("out")
        let first = try fixture.ca.issueAgent(hostID: "web-1").write(to: out)
        let key = fileText(first.key)
        expectPKIError(.fileExists) { () throws(PKIError) in try fixture.ca.issueAgent(hostID: "web-1").write(to: out) }
        #expect(fileText(first.key) == key)

        // Only the certificate there: still refused, and no key left behind.
        try FileManager.default.removeItem(atPath: first.key)
        expectPKIError(.fileExists) { () throws(PKIError) in try fixture.ca.issueAgent(hostID: "web-1").write(to: out) }
        #expect(!FileManager.default.fileExists(atPath: first.key))
        // No temporary files left either.
        #expect(try FileManager.default.contentsOfDirectory(atPath: out) == ["web-1.pem"])
    }

    @Test("PKIError prints as code: message")
    func errorDescription() {
        let error = PKIError(.caMissing, "no CA here")
        #expect(error.description == "ca_missing: no CA here")
        #expect(Set(PKIError.Code.allCases.map(\.rawValue)).count == PKIError.Code.allCases.count)
    }
}
