import BatonPKI
import BatonTestSupport
import Foundation
import Testing

@Suite("Peer identities from certificates")
struct PeerIdentityTests {
    @Test("agent and controller identities from issued certificates, PEM and DER")
    func fromCertificates() throws {
        let fixture = try PKIFixture()
        defer { fixture.remove() }
        let agent = try fixture.ca.issueAgent(hostID: "web-1", dnsNames: ["web-1.example.com"], ipAddresses: ["10.0.0.7"])
        let controller = try fixture.ca.issueController(name: "ci")

        #expect(try PeerIdentity(certificate: agent.certificate.certificate) == .agent(hostID: "web-1"))
        #expect(try PeerIdentity(certificate: controller.certificate.certificate) == .controller(name: "ci"))

        let parsed = try PeerCertificate(pem: agent.certificate.pem)
        #expect(parsed.identity == .agent(hostID: "web-1"))
        #expect(parsed.identity.role == .agent)
        #expect(parsed.identity.name == "web-1")
        #expect(parsed.alternativeNames.dnsNames == ["web-1.example.com", "web-1.agents.baton.invalid"])
        #expect(parsed.alternativeNames.ipAddresses == ["10.0.0.7"])
        #expect(parsed.notValidAfter == agent.certificate.notValidAfter)
        #expect(parsed.daysUntilExpiry() == 396)

        let fromDER = try PeerCertificate(derBytes: try derBytes(ofPEM: controller.certificate.pem))
        #expect(fromDER.identity == .controller(name: "ci"))
        #expect(fromDER.identity.uri == "baton://controller/ci")
        #expect("\(fromDER.identity)" == "baton://controller/ci")
        expectPKIError(.badPEM) { () throws(PKIError) in try PeerCertificate(derBytes: [0x30, 0x03, 0x02, 0x01, 0x01]) }
    }

    @Test("URIs parse strictly", arguments: [
        ("baton://agent/web-1", PeerIdentity.agent(hostID: "web-1")),
        ("baton://controller/ci", PeerIdentity.controller(name: "ci")),
    ])
    func validURIs(uri: String, identity: PeerIdentity) throws {
        #expect(try PeerIdentity(uri: uri) == identity)
        #expect(identity.uri == uri)
    }

    @Test("anything else is refused", arguments: [
        "baton://agent/", "baton://agent", "baton://agent/web-1/", "baton://agent/web-1?x=1", "baton://agent/Web-1",
        "baton://admin/web-1", "BATON://agent/web-1", "baton:agent/web-1", "https://agent/web-1", "baton://agent/../x",
        "baton://agent//web-1", "baton://agent/web-1:443", "",
    ])
    func invalidURIs(uri: String) {
        expectPKIError(.invalidName) { () throws(PKIError) in try PeerIdentity(uri: uri) }
    }

    @Test("roles round-trip")
    func roles() throws {
        #expect(try PeerIdentity(role: .agent, name: "db-3") == .agent(hostID: "db-3"))
        #expect(try PeerIdentity(role: .controller, name: "alice") == .controller(name: "alice"))
        expectPKIError(.invalidName) { () throws(PKIError) in try PeerIdentity(role: .agent, name: "DB") }
        #expect(PeerIdentity.Role.allCases.map(\.rawValue) == ["agent", "controller"])
    }

    @Test("a certificate without exactly one valid baton:// URI has no identity", arguments: [
        "subjectAltName=DNS:web-1.example.com",
        "subjectAltName=URI:baton://agent/web-1,URI:baton://controller/ci",
        "subjectAltName=URI:baton://agent/web-1,URI:Baton://agent/web-2",
        "subjectAltName=URI:baton://agent/WEB",
        "basicConstraints=CA:FALSE",
    ])
    func noIdentity(extensions: String) throws {
        let fixture = try PKIFixture()
        defer { fixture.remove() }
        let path = fixture.child("self-signed.pem")
        let made = try OpenSSL.run([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", path + ".key",
            "-subj", "/CN=web-1", "-days", "1", "-addext", extensions, "-out", path,
        ])
        #expect(made.status == 0, "\(made.stderr)")
        let certificatePEM = fileText(path)
        expectPKIError(.peerIdentityInvalid) { () throws(PKIError) in try PeerCertificate(pem: certificatePEM) }
    }

    @Test("the CA certificate itself is no peer")
    func caIsNoPeer() throws {
        let fixture = try PKIFixture()
        defer { fixture.remove() }
        expectPKIError(.peerIdentityInvalid) { () throws(PKIError) in try PeerCertificate(pem: fixture.ca.certificatePEM) }
    }
}
