import BatonController
import BatonPKI
import BatonTestSupport
import Foundation
import Testing

/// The controller's own certificate, key and CA are checked before any agent is
/// contacted, and each mistake names its file.
@Suite struct ControllerCredentialsTests {
    /// A fleet CA with a controller and an agent credential, and a second, unrelated CA
    /// with a controller credential of its own, all written to a temporary directory.
    struct Files {
        let dir: TemporaryDirectory
        let ca: String, certificate: String, key: String
        let agentCertificate: String, agentKey: String
        let otherCA: String, otherCertificate: String, otherKey: String

        init() throws {
            dir = try TemporaryDirectory(prefix: "baton-credentials")
            let fleet = try FleetCA.create(in: dir.child("ca"))
            let other = try FleetCA.create(in: dir.child("other-ca"), name: "other")
            try FileManager.default.createDirectory(atPath: dir.child("other"), withIntermediateDirectories: true)
            let controller = try fleet.issueController(name: "ci").write(to: dir.path)
            let agent = try fleet.issueAgent(hostID: "web-1").write(to: dir.path)
            let foreign = try other.issueController(name: "ci").write(to: dir.child("other"))
            certificate = controller.certificate
            key = controller.key
            agentCertificate = agent.certificate
            agentKey = agent.key
            otherCertificate = foreign.certificate
            otherKey = foreign.key
            ca = fleet.certificatePath
            otherCA = other.certificatePath
        }

        func credentials(certificate: String? = nil, key: String? = nil, ca: String? = nil) -> ControllerCredentials {
            ControllerCredentials(certificatePath: certificate ?? self.certificate, keyPath: key ?? self.key, caPath: ca ?? self.ca)
        }

        func write(_ text: String, to name: String) throws -> String {
            let path = dir.child(name)
            try text.write(toFile: path, atomically: false, encoding: .utf8)
            return path
        }
    }

    /// The error `check` throws, failing the test when it succeeds.
    static func refusal(_ credentials: ControllerCredentials, now: Date = Date(),
                        sourceLocation: SourceLocation = #_sourceLocation) -> ControllerError? {
        do {
            _ = try credentials.check(now: now)
            Issue.record("the credentials were accepted", sourceLocation: sourceLocation)
            return nil
        } catch {
            return error
        }
    }

    @Test func matchingFilesPass() throws {
        let files = try Files()
        defer { files.dir.remove() }
        let checked = try files.credentials().check()
        #expect(checked.certificate.identity == .controller(name: "ci"))
        _ = try files.credentials().tlsConfiguration()
    }

    @Test func aMissingOrUnreadableFileIsCredentialsMissing() throws {
        let files = try Files()
        defer { files.dir.remove() }
        let absent = files.dir.child("absent.pem")
        for credentials in [files.credentials(certificate: absent), files.credentials(key: absent), files.credentials(ca: absent)] {
            let error = Self.refusal(credentials)
            #expect(error?.code == .credentialsMissing)
            #expect(error?.message.contains("'\(absent)' does not exist") == true, "\(String(describing: error))")
        }
        // A directory where the key should be: there, but nothing to read.
        let error = Self.refusal(files.credentials(key: files.dir.child("other")))
        #expect(error?.code == .credentialsMissing)
        #expect(error?.message.contains("cannot read the controller key '\(files.dir.child("other"))'") == true)
    }

    @Test func filesThatAreNotPEMAreNamed() throws {
        let files = try Files()
        defer { files.dir.remove() }
        let junk = try files.write("not a certificate\n", to: "junk.pem")
        let cases: [(ControllerCredentials, String)] = [
            (files.credentials(certificate: junk), "the controller certificate '\(junk)' is not a PEM certificate"),
            (files.credentials(key: junk), "the controller key '\(junk)' is not a PEM private key"),
            (files.credentials(ca: junk), "the fleet CA certificate '\(junk)' is not a PEM certificate"),
            // A certificate where the key should be is not a key either.
            (files.credentials(key: files.certificate), "the controller key '\(files.certificate)' is not a PEM private key"),
        ]
        for (credentials, expected) in cases {
            let error = Self.refusal(credentials)
            #expect(error?.code == .credentialsInvalid)
            #expect(error?.message.hasPrefix(expected) == true, "\(String(describing: error))")
        }
    }

    /// The mistakes NIOSSL only finds in a handshake, where every agent looked unreachable.
    @Test func aKeyOfAnotherCertificateIsRefused() throws {
        let files = try Files()
        defer { files.dir.remove() }
        let error = Self.refusal(files.credentials(key: files.agentKey))
        #expect(error?.code == .credentialsInvalid)
        #expect(error?.message.hasPrefix("the controller key '\(files.agentKey)' is not the private key of the certificate") == true,
                "\(String(describing: error))")
        #expect(error?.message.contains("tls.key") == true)
    }

    @Test func aCertificateFromAnotherCAIsRefused() throws {
        let files = try Files()
        defer { files.dir.remove() }
        // The other fleet's certificate and key, with this fleet's CA: agents would refuse it.
        let foreign = Self.refusal(files.credentials(certificate: files.otherCertificate, key: files.otherKey))
        #expect(foreign?.code == .credentialsInvalid)
        #expect(foreign?.message.hasPrefix("the controller certificate '\(files.otherCertificate)' was not issued by the fleet CA") == true,
                "\(String(describing: foreign))")
        // This fleet's certificate with another CA file: agents' certificates would not verify.
        let wrongCA = Self.refusal(files.credentials(ca: files.otherCA))
        #expect(wrongCA?.code == .credentialsInvalid)
        #expect(wrongCA?.message.hasPrefix("the controller certificate '\(files.certificate)' was not issued by the fleet CA") == true)
        // A leaf certificate given as the CA.
        let notCA = Self.refusal(files.credentials(ca: files.agentCertificate))
        #expect(notCA?.code == .credentialsInvalid)
        #expect(notCA?.message.hasPrefix("the fleet CA certificate '\(files.agentCertificate)' is not a CA certificate") == true,
                "\(String(describing: notCA))")
    }

    @Test func anExpiredOrNotYetValidCertificateIsRefused() throws {
        let files = try Files()
        defer { files.dir.remove() }
        let later = Date().addingTimeInterval(Double(FleetCA.defaultControllerValidityDays + 1) * 86_400)
        let expired = Self.refusal(files.credentials(), now: later)
        #expect(expired?.code == .credentialsInvalid)
        #expect(expired?.message.hasPrefix("the controller certificate '\(files.certificate)' expired on ") == true,
                "\(String(describing: expired))")
        #expect(expired?.message.contains("baton pki issue controller") == true)
        let early = Self.refusal(files.credentials(), now: Date().addingTimeInterval(-86_400))
        #expect(early?.code == .credentialsInvalid)
        #expect(early?.message.contains("is not valid until") == true, "\(String(describing: early))")
    }

    @Test func anAgentCertificateIsNotAController() throws {
        let files = try Files()
        defer { files.dir.remove() }
        let error = Self.refusal(files.credentials(certificate: files.agentCertificate, key: files.agentKey))
        #expect(error?.code == .credentialsInvalid)
        #expect(error?.message.contains("carries baton://agent/web-1, not a controller identity") == true, "\(String(describing: error))")
    }

    /// The client refuses to exist with such files, so no request can go out.
    @Test func theAgentClientIsNeverBuiltWithBadCredentials() async throws {
        let files = try Files()
        defer { files.dir.remove() }
        let hosts = [Fleet.Host(id: "web-1", address: "127.0.0.1:9", environment: "staging")]
        do {
            let client = try HTTPAgentClient(credentials: files.credentials(key: files.agentKey), hosts: hosts)
            Issue.record("an AgentClient was built with the agent's key as the controller's")
            await client.shutdown()
        } catch {
            #expect(error.code == .credentialsInvalid)
            #expect(error.message.contains(files.agentKey))
        }
    }
}
