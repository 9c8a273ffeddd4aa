import Crypto
import SwiftASN1
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// An Ed25519 public key that verifies manifest signatures.
/// Its `keyid` is the lowercase hex SHA-256 of the raw 32-byte key (docs/design.md §2).
public struct VerifyingKey: Sendable, Hashable {
    public let raw: [UInt8]
    let key: Curve25519.Signing.PublicKey

    public init(raw: [UInt8]) throws(ConfigurationError) {
        guard raw.count == 32, let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw) else {
            throw ConfigurationError(.badPEM, "an Ed25519 public key is exactly 32 bytes")
        }
        self.raw = raw
        self.key = key
    }

    public var keyid: String { Digest.sha256Hex(raw) }

    public func isValidSignature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
        key.isValidSignature(signature, for: message)
    }

    /// Reads a `PUBLIC KEY` (SubjectPublicKeyInfo) PEM, as `baton keys generate` and
    /// `openssl pkey -pubout` write it. A private key PEM is accepted too (its public half
    /// is taken), so an approver can point at either file.
    public init(pem: String) throws(ConfigurationError) {
        let document = try KeyPEM.document(pem)
        switch document.discriminator {
        case "PUBLIC KEY":
            self = try VerifyingKey(raw: KeyPEM.ed25519PublicKey(fromSPKI: document.derBytes))
        case "PRIVATE KEY":
            self = try SigningKey(pkcs8: document.derBytes).verifyingKey
        default:
            throw KeyPEM.wrongLabel(document.discriminator, expected: "PUBLIC KEY")
        }
    }

    public var pem: String {
        PEMDocument(type: "PUBLIC KEY", derBytes: KeyPEM.spki(raw)).pemString + "\n"
    }

    public static func == (a: VerifyingKey, b: VerifyingKey) -> Bool { a.raw == b.raw }
    public func hash(into hasher: inout Hasher) { hasher.combine(raw) }
}

/// An Ed25519 private key that signs manifests.
public struct SigningKey: Sendable {
    let key: Curve25519.Signing.PrivateKey

    public init() { key = Curve25519.Signing.PrivateKey() }

    /// The 32-byte seed (RFC 8032 private key).
    public init(seed: [UInt8]) throws(ConfigurationError) {
        guard seed.count == 32, let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: seed) else {
            throw ConfigurationError(.badPEM, "an Ed25519 private key is exactly 32 bytes")
        }
        self.key = key
    }

    /// Reads a PKCS#8 `PRIVATE KEY` PEM, as `baton keys generate` and
    /// `openssl genpkey -algorithm ed25519` write it.
    public init(pem: String) throws(ConfigurationError) {
        let document = try KeyPEM.document(pem)
        guard document.discriminator == "PRIVATE KEY" else {
            throw KeyPEM.wrongLabel(document.discriminator, expected: "PRIVATE KEY")
        }
        try self.init(pkcs8: document.derBytes)
    }

    init(pkcs8 der: [UInt8]) throws(ConfigurationError) {
        try self.init(seed: KeyPEM.ed25519Seed(fromPKCS8: der))
    }

    public var seed: [UInt8] { Array(key.rawRepresentation) }

    public var verifyingKey: VerifyingKey {
        // A key made by swift-crypto always has a valid 32-byte public half.
        try! VerifyingKey(raw: Array(key.publicKey.rawRepresentation))
    }

    public var keyid: String { verifyingKey.keyid }

    public func signature(for message: [UInt8]) -> [UInt8] {
        // Signing with a valid key does not fail.
        Array(try! key.signature(for: message))
    }

    /// PKCS#8 v1 PEM, the form OpenSSL reads and writes.
    public var pem: String {
        PEMDocument(type: "PRIVATE KEY", derBytes: KeyPEM.pkcs8(seed: seed)).pemString + "\n"
    }
}

/// DER and PEM forms of Ed25519 keys (RFC 8410).
enum KeyPEM {
    static let ed25519: ASN1ObjectIdentifier = [1, 3, 101, 112]
    static let knownAlgorithms: [ASN1ObjectIdentifier: String] = [
        [1, 2, 840, 10045, 2, 1]: "an ECDSA key",
        [1, 2, 840, 113549, 1, 1, 1]: "an RSA key",
        [1, 3, 101, 110]: "an X25519 key",
        [1, 3, 101, 111]: "an X448 key",
        [1, 3, 101, 113]: "an Ed448 key",
    ]

    static func document(_ pem: String) throws(ConfigurationError) -> PEMDocument {
        do {
            return try PEMDocument(pemString: pem.trimmingASCIIWhitespace())
        } catch {
            throw ConfigurationError(.badPEM, "not a PEM document (expected -----BEGIN ...----- armour)")
        }
    }

    static func wrongLabel(_ label: String, expected: String) -> ConfigurationError {
        let hint: String
        switch label {
        case "ENCRYPTED PRIVATE KEY": hint = "the key is encrypted; Baton needs an unencrypted PKCS#8 key"
        case "EC PRIVATE KEY", "RSA PRIVATE KEY": hint = "it holds \(label == "EC PRIVATE KEY" ? "an ECDSA" : "an RSA") key"
        case "CERTIFICATE": hint = "it is a certificate, not a signing key"
        default: hint = "it is a '\(label)' document"
        }
        return ConfigurationError(
            .wrongKeyType,
            "expected an Ed25519 \(expected) PEM, but \(hint); make one with `baton keys generate` or `openssl genpkey -algorithm ed25519`"
        )
    }

    static func checkAlgorithm(_ algorithm: ASN1ObjectIdentifier) throws(ConfigurationError) {
        guard algorithm == ed25519 else {
            let what = knownAlgorithms[algorithm] ?? "a key of algorithm \(algorithm)"
            throw ConfigurationError(
                .wrongKeyType,
                "it is \(what), but manifests are signed with Ed25519; make one with `baton keys generate` or `openssl genpkey -algorithm ed25519`"
            )
        }
    }

    /// SubjectPublicKeyInfo ::= SEQUENCE { algorithm AlgorithmIdentifier, subjectPublicKey BIT STRING }
    static func ed25519PublicKey(fromSPKI der: [UInt8]) throws(ConfigurationError) -> [UInt8] {
        let parsed: (ASN1ObjectIdentifier, [UInt8])
        do {
            parsed = try DER.sequence(try DER.parse(der), identifier: .sequence) { nodes in
                let algorithm = try algorithmIdentifier(&nodes)
                let bits = try ASN1BitString(derEncoded: &nodes)
                return (algorithm, Array(bits.bytes))
            }
        } catch {
            throw ConfigurationError(.badPEM, "the public key is not a valid SubjectPublicKeyInfo structure")
        }
        try checkAlgorithm(parsed.0)
        return parsed.1
    }

    /// OneAsymmetricKey (PKCS#8 v1 or v2) ::= SEQUENCE { version, algorithm, privateKey OCTET STRING
    /// containing CurvePrivateKey ::= OCTET STRING, [0] attributes OPTIONAL, [1] publicKey OPTIONAL }
    static func ed25519Seed(fromPKCS8 der: [UInt8]) throws(ConfigurationError) -> [UInt8] {
        let parsed: (ASN1ObjectIdentifier, [UInt8])
        do {
            parsed = try DER.sequence(try DER.parse(der), identifier: .sequence) { nodes in
                let version = try Int(derEncoded: &nodes)
                guard version == 0 || version == 1 else { throw ASN1Error.invalidASN1Object(reason: "version") }
                let algorithm = try algorithmIdentifier(&nodes)
                let wrapped = try ASN1OctetString(derEncoded: &nodes)
                // Attributes and the optional public key are not needed: the public key is
                // always recomputed from the seed.
                while nodes.next() != nil {}
                return (algorithm, Array(wrapped.bytes))
            }
        } catch {
            throw ConfigurationError(.badPEM, "the private key is not a valid PKCS#8 structure")
        }
        try checkAlgorithm(parsed.0)
        guard let inner = try? ASN1OctetString(derEncoded: parsed.1), inner.bytes.count == 32 else {
            throw ConfigurationError(.badPEM, "the Ed25519 private key must hold a 32-byte seed")
        }
        return Array(inner.bytes)
    }

    /// AlgorithmIdentifier ::= SEQUENCE { algorithm OID, parameters ANY OPTIONAL }
    private static func algorithmIdentifier(_ nodes: inout ASN1NodeCollection.Iterator) throws -> ASN1ObjectIdentifier {
        guard let node = nodes.next() else { throw ASN1Error.invalidASN1Object(reason: "missing AlgorithmIdentifier") }
        return try DER.sequence(node, identifier: .sequence) { inner in
            let oid = try ASN1ObjectIdentifier(derEncoded: &inner)
            // RFC 8410 says parameters are absent; some encoders write NULL. Neither matters.
            while inner.next() != nil {}
            return oid
        }
    }

    static func spki(_ raw: [UInt8]) -> [UInt8] {
        var serializer = DER.Serializer()
        try! serializer.appendConstructedNode(identifier: .sequence) { coder in
            try coder.appendConstructedNode(identifier: .sequence) { try $0.serialize(ed25519) }
            try coder.serialize(ASN1BitString(bytes: raw[...]))
        }
        return serializer.serializedBytes
    }

    static func pkcs8(seed: [UInt8]) -> [UInt8] {
        var inner = DER.Serializer()
        try! inner.serialize(ASN1OctetString(contentBytes: seed[...]))
        var serializer = DER.Serializer()
        try! serializer.appendConstructedNode(identifier: .sequence) { coder in
            try coder.serialize(0)
            try coder.appendConstructedNode(identifier: .sequence) { try $0.serialize(ed25519) }
            try coder.serialize(ASN1OctetString(contentBytes: inner.serializedBytes[...]))
        }
        return serializer.serializedBytes
    }
}

extension String {
    func trimmingASCIIWhitespace() -> String {
        let scalars = unicodeScalars
        let isSpace: (Unicode.Scalar) -> Bool = { $0 == " " || $0 == "\n" || $0 == "\r" || $0 == "\t" }
        guard let first = scalars.firstIndex(where: { !isSpace($0) }),
            let last = scalars.lastIndex(where: { !isSpace($0) })
        else { return "" }
        return String(scalars[first...last])
    }
}
