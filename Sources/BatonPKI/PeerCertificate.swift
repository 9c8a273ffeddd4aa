#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SwiftASN1
import X509

/// A certificate issued by the fleet CA, with the Baton identity it carries: what the
/// agent and the controller look at once TLS has validated the chain, and what
/// `baton pki` prints after issuing.
public struct PeerCertificate: Sendable, Hashable {
    /// The parsed certificate.
    public let certificate: Certificate
    /// The `baton://` identity from its subject alternative names.
    public let identity: PeerIdentity
    /// Its DNS and IP subject alternative names.
    public let alternativeNames: AlternativeNames

    /// Names the peer behind `certificate`; `peer_identity_invalid` unless it carries
    /// exactly one valid `baton://` URI.
    public init(_ certificate: Certificate) throws(PKIError) {
        self.certificate = certificate
        identity = try PeerIdentity(certificate: certificate)
        var names = AlternativeNames()
        for name in (try? certificate.extensions.subjectAlternativeNames) ?? SubjectAlternativeNames() {
            switch name {
            // Names the CA would never have written are left out rather than refused:
            // the identity is what authorises, these only describe.
            case .dnsName(let dns): try? names.addDNSName(dns)
            case .ipAddress(let octets): names.addIPAddress(Array(octets.bytes))
            default: break
            }
        }
        alternativeNames = names
    }

    /// Parses a PEM certificate (`-----BEGIN CERTIFICATE-----`), e.g. an agent's `<host-id>.pem`.
    public init(pem: String) throws(PKIError) {
        try self.init(CertificatePEM.parse(pem))
    }

    /// Parses a DER certificate, e.g. the peer certificate of a TLS connection
    /// (`NIOSSLCertificate.toDERBytes()`).
    public init(derBytes: [UInt8]) throws(PKIError) {
        let certificate: Certificate
        do {
            certificate = try Certificate(derEncoded: derBytes)
        } catch {
            throw PKIError(.badPEM, "not a DER X.509 certificate: \(error)")
        }
        try self.init(certificate)
    }

    public var notValidBefore: Date { certificate.notValidBefore }

    /// When the certificate expires.
    public var notValidAfter: Date { certificate.notValidAfter }

    /// Whole days from `now` until expiry, negative once expired (rounded down, so "0"
    /// means less than a day left).
    public func daysUntilExpiry(now: Date = Date()) -> Int {
        let seconds = notValidAfter.timeIntervalSince(now)
        return Int((seconds / 86_400).rounded(.down))
    }

    /// The serial number as lower-case hex, as `openssl x509 -serial` prints it (minus the colons).
    public var serialNumberHex: String {
        certificate.serialNumber.bytes.map { byte in
            let hex = String(byte, radix: 16)
            return hex.count == 1 ? "0" + hex : hex
        }.joined()
    }

    /// The certificate as PEM.
    public var pem: String { CertificatePEM.encode(certificate) }
}

/// PEM in and out for certificates, with `bad_pem` errors that say what was found.
enum CertificatePEM {
    static func parse(_ pem: String) throws(PKIError) -> Certificate {
        let document = try document(pem, expecting: Certificate.defaultPEMDiscriminator)
        do {
            return try Certificate(derEncoded: document.derBytes)
        } catch {
            throw PKIError(.badPEM, "the CERTIFICATE PEM block is not a valid X.509 certificate: \(error)")
        }
    }

    static func encode(_ certificate: Certificate) -> String {
        // Serialising a certificate we parsed or built cannot fail.
        (try? certificate.serializeAsPEM().pemString) ?? ""
    }

    /// The first PEM block of `text`, which must be of kind `discriminator`.
    static func document(_ text: String, expecting discriminator: String) throws(PKIError) -> PEMDocument {
        let document: PEMDocument
        do {
            document = try PEMDocument(pemString: text)
        } catch {
            throw PKIError(.badPEM, "not PEM: expected exactly one '-----BEGIN \(discriminator)-----' block")
        }
        guard document.discriminator == discriminator else {
            throw PKIError(.badPEM, "expected a \(discriminator) PEM block, found \(document.discriminator)")
        }
        return document
    }
}
