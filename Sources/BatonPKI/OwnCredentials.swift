#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import BatonProtocol
import SwiftASN1
import X509

/// A peer's own certificate, private key and the fleet CA it trusts, checked together
/// before the peer contacts anyone. The TLS library would only discover a key that does
/// not match, a certificate from another CA or an expired certificate during a
/// handshake, and then every remote peer looks unreachable with a library message that
/// blames no file; here each such mistake is named against the file that holds it.
public struct OwnCredentials: Sendable {
    /// The peer's own certificate, with the identity it carries.
    public let certificate: PeerCertificate
    /// The fleet CA certificate.
    public let ca: Certificate

    /// Which of the three files a problem is in.
    public enum File: String, Sendable, Equatable {
        case certificate, key, ca
    }

    /// What is wrong, and in which file. `message` says what was found; the caller adds
    /// the path and what to do, which depend on how the files were configured.
    public struct Problem: Error, Sendable, Equatable, CustomStringConvertible {
        public let file: File
        public let message: String

        public init(_ file: File, _ message: String) {
            self.file = file
            self.message = message
        }

        public var description: String { "\(file.rawValue): \(message)" }
    }

    /// Parses and cross-checks the three PEM texts: the CA is a CA certificate and valid
    /// at `now`; the certificate carries a Baton identity, is valid at `now` and was signed
    /// by that CA; the key is the private half of the certificate's public key.
    public static func check(certificatePEM: String, keyPEM: String, caPEM: String, now: Date) throws(Problem) -> OwnCredentials {
        let ca: Certificate
        do {
            ca = try CertificatePEM.parse(caPEM)
        } catch {
            throw Problem(.ca, "is not a PEM certificate (\(error.message))")
        }
        guard case .isCertificateAuthority? = try? ca.extensions.basicConstraints else {
            throw Problem(.ca, "is not a CA certificate (basicConstraints CA:true missing); it must be the fleet's ca.pem")
        }
        if now >= ca.notValidAfter {
            throw Problem(.ca, "expired on \(Self.day(ca.notValidAfter)); no agent certificate it issued can be verified any more")
        }

        let certificate: PeerCertificate
        do {
            certificate = try PeerCertificate(pem: certificatePEM)
        } catch {
            throw Problem(.certificate, error.code == .badPEM ? "is not a PEM certificate (\(error.message))" : error.message)
        }
        if now >= certificate.notValidAfter {
            throw Problem(.certificate, "expired on \(Self.day(certificate.notValidAfter))")
        }
        if now < certificate.notValidBefore {
            throw Problem(.certificate, "is not valid until \(Self.day(certificate.notValidBefore)) (is this machine's clock right?)")
        }
        guard certificate.certificate.issuer == ca.subject,
            ca.publicKey.isValidSignature(certificate.certificate.signature, for: certificate.certificate)
        else {
            throw Problem(.certificate, "was not issued by the fleet CA given (\(ca.subject)); peers that trust that CA would refuse it")
        }

        let key: Certificate.PrivateKey
        do {
            key = try Certificate.PrivateKey(pemDocument: try PEMDocument(pemString: keyPEM))
        } catch {
            throw Problem(.key, "is not a PEM private key")
        }
        guard key.publicKey == certificate.certificate.publicKey else {
            throw Problem(.key, "is not the private key of the certificate (their public keys differ)")
        }
        return OwnCredentials(certificate: certificate, ca: ca)
    }

    static func day(_ date: Date) -> String { RFC3339.format(date) }
}
