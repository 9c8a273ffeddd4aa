import Crypto
import SwiftASN1
import X509

/// The ECDSA P-256 private key behind a CA or leaf certificate. Baton uses P-256
/// everywhere: every TLS stack speaks it, and keys and signatures stay small.
public struct IdentityKey: Sendable {
    let key: P256.Signing.PrivateKey

    /// Generates a new key.
    public init() {
        key = P256.Signing.PrivateKey()
    }

    init(_ key: P256.Signing.PrivateKey) {
        self.key = key
    }

    /// Reads a PKCS#8 (`PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`) PEM key, refusing any
    /// other algorithm with `wrong_key_type`.
    public init(pem: String) throws(PKIError) {
        let document: PEMDocument
        do {
            document = try PEMDocument(pemString: pem)
        } catch {
            throw PKIError(.badPEM, "not a PEM private key")
        }
        guard document.discriminator == "PRIVATE KEY" || document.discriminator == "EC PRIVATE KEY" else {
            throw PKIError(.badPEM, "expected a PRIVATE KEY PEM block, found \(document.discriminator)")
        }
        if let key = try? P256.Signing.PrivateKey(pemRepresentation: pem) {
            self.key = key
            return
        }
        // Tell a well-formed key of another type from garbage: the fix differs.
        if let other = try? Certificate.PrivateKey(pemDocument: document) {
            throw PKIError(.wrongKeyType, "the key is \(Self.describeType(of: other)), but Baton uses ECDSA P-256 keys only")
        }
        throw PKIError(.badPEM, "the \(document.discriminator) PEM block is not a valid key")
    }

    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), as OpenSSL writes it.
    public var pem: String { key.pemRepresentation }

    /// The public half, as certificates and CSRs carry it.
    public var publicKey: Certificate.PublicKey { Certificate.PublicKey(key.publicKey) }

    var certificateKey: Certificate.PrivateKey { Certificate.PrivateKey(key) }

    /// "ECDSA P-384", "RSA 2048", "Ed25519": a key's type as an operator knows it, from
    /// swift-certificates' descriptions (`P384.PrivateKey`, `RSA2048.PublicKey`...).
    static func describeType(of key: some CustomStringConvertible) -> String {
        let type = key.description.split(separator: ".").first.map(String.init) ?? key.description
        if type.hasPrefix("P"), let bits = Int(type.dropFirst()) { return "ECDSA P-\(bits)" }
        if type.hasPrefix("RSA") { return "RSA \(type.dropFirst(3))" }
        return type
    }
}
