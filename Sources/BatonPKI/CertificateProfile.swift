import Crypto
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import X509

/// What every certificate of the fleet PKI has in common: serials, key identifiers,
/// validity, and the extensions of each kind of certificate.
enum CertificateProfile {
    /// How far notBefore is put in the past, so a host whose clock is a little behind
    /// accepts a certificate issued a moment ago.
    static let clockSkew: TimeInterval = 15 * 60

    static let day: TimeInterval = 86_400

    /// Valid `validityDays` from `now`, starting `clockSkew` earlier. Whole seconds, as
    /// X.509 times are: the certificate then says exactly what was computed here.
    static func validity(days: Int, from now: Date) -> (notBefore: Date, notAfter: Date) {
        let start = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))
        return (start.addingTimeInterval(-clockSkew), start.addingTimeInterval(TimeInterval(days) * day))
    }

    /// A random serial of exactly 20 bytes (the RFC 5280 maximum), positive: the top bit is
    /// clear, and the next one set so that no leading zero byte shortens it. 158 random bits.
    static func serialNumber() -> Certificate.SerialNumber {
        var bytes = (0..<20).map { _ in UInt8.random(in: 0...255) }
        bytes[0] = (bytes[0] & 0x7F) | 0x40
        return Certificate.SerialNumber(bytes: bytes)
    }

    /// RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits. SHA-1 is what
    /// the RFC names and what other tools compute; it is an identifier, not a signature.
    static func keyIdentifier(of key: Certificate.PublicKey) -> ArraySlice<UInt8> {
        ArraySlice(Insecure.SHA1.hash(data: Array(key.subjectPublicKeyInfoBytes)))
    }

    /// The self-signed CA: may sign leaves only (path length 0), nothing else.
    static func caExtensions(key: Certificate.PublicKey) throws -> Certificate.Extensions {
        try Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
            Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            SubjectKeyIdentifier(keyIdentifier: keyIdentifier(of: key))
        }
    }

    /// An agent (TLS server and client) or controller (TLS client only) certificate. Only
    /// these extensions are ever written: nothing is copied from a CSR.
    static func leafExtensions(
        identity: PeerIdentity,
        names: AlternativeNames,
        key: Certificate.PublicKey,
        issuerKeyIdentifier: ArraySlice<UInt8>
    ) throws -> Certificate.Extensions {
        let usages: [ExtendedKeyUsage.Usage] =
            switch identity {
            case .agent: [.serverAuth, .clientAuth]
            case .controller: [.clientAuth]
            }
        return try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true))
            try ExtendedKeyUsage(usages)
            SubjectAlternativeNames([.uniformResourceIdentifier(identity.uri)] + names.generalNames)
            SubjectKeyIdentifier(keyIdentifier: keyIdentifier(of: key))
            AuthorityKeyIdentifier(keyIdentifier: issuerKeyIdentifier)
        }
    }
}
