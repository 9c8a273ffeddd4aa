import SwiftASN1
import X509

/// A certificate signing request (PKCS#10) for a Baton identity: made on the host with a
/// key that never leaves it, signed by the CA with ``FleetCA/sign(_:as:validityDays:now:)``.
/// The requested names travel in the extensionRequest attribute as a subjectAltName.
public struct SigningRequest: Sendable {
    /// The parsed request.
    public let csr: CertificateSigningRequest

    /// Makes a CSR for `identity` (plus DNS and IP names for an agent), signed by `key`.
    public init(identity: PeerIdentity, names: AlternativeNames = AlternativeNames(), key: IdentityKey) throws(PKIError) {
        do {
            let extensions = try Certificate.Extensions {
                SubjectAlternativeNames([.uniformResourceIdentifier(identity.uri)] + names.generalNames)
            }
            var attributes = CertificateSigningRequest.Attributes()
            attributes.insert(try CertificateSigningRequest.Attribute(ExtensionRequest(extensions: extensions)))
            csr = try CertificateSigningRequest(
                version: .v1,
                subject: try DistinguishedName { CommonName(identity.name) },
                privateKey: key.certificateKey,
                attributes: attributes,
                signatureAlgorithm: .ecdsaWithSHA256)
        } catch {
            throw PKIError(.internalError, "cannot build the CSR: \(error)")
        }
    }

    /// Parses a PEM CSR (`-----BEGIN CERTIFICATE REQUEST-----`). Nothing is checked yet:
    /// the CA does that when signing.
    public init(pem: String) throws(PKIError) {
        let document = try CertificatePEM.document(pem, expecting: CertificateSigningRequest.defaultPEMDiscriminator)
        do {
            csr = try CertificateSigningRequest(derEncoded: document.derBytes)
        } catch {
            throw PKIError(.badPEM, "the CERTIFICATE REQUEST PEM block is not a valid PKCS#10 request: \(error)")
        }
    }

    public init(_ csr: CertificateSigningRequest) {
        self.csr = csr
    }

    /// Writes `<directory>/<name>.key` (0600) and `<directory>/<name>.csr` (0644), where
    /// `name` is the requested host id or controller name, or neither: refuses with
    /// `file_exists` if either exists. `key` must be the key the request was made with.
    @discardableResult
    public func write(key: IdentityKey, to directory: String) throws(PKIError) -> (request: String, key: String) {
        let name = try requestedNames().identity.name
        let paths = (request: "\(directory)/\(name).csr", key: "\(directory)/\(name).key")
        try PEMFile.writeKeyPair(key: key.pem, to: paths.key, publicMaterial: pem, to: paths.request)
        return paths
    }

    /// The CSR as PEM.
    public var pem: String {
        // Serialising a CSR we parsed or built cannot fail.
        (try? csr.serializeAsPEM().pemString) ?? ""
    }

    /// True when the request is signed by the key it carries: proof that whoever made it
    /// holds the private key, and that nobody changed it since.
    public var isSignatureValid: Bool {
        csr.publicKey.isValidSignature(csr.signature, for: csr)
    }

    /// What the request asks for: its single `baton://` identity and its DNS and IP names.
    /// Refuses requests for anything Baton never certifies.
    public func requestedNames() throws(PKIError) -> (identity: PeerIdentity, names: AlternativeNames) {
        let extensions: Certificate.Extensions
        let san: SubjectAlternativeNames?
        do {
            extensions = try csr.attributes.extensionRequest?.extensions ?? Certificate.Extensions()
            san = try extensions.subjectAlternativeNames
        } catch {
            throw PKIError(.badPEM, "the CSR's extensionRequest attribute is malformed: \(error)")
        }
        var batonURIs: [String] = []
        var names = AlternativeNames()
        for name in san ?? SubjectAlternativeNames() {
            switch name {
            case .uniformResourceIdentifier(let uri) where PeerIdentity.isBatonURI(uri):
                batonURIs.append(uri)
            case .dnsName(let dns):
                try names.addDNSName(dns)
            case .ipAddress(let octets):
                guard names.addIPAddress(Array(octets.bytes)) else {
                    throw PKIError(.invalidIPAddress, "the CSR asks for an IP address of \(octets.bytes.count) bytes; 4 or 16 expected")
                }
            default:
                throw PKIError(
                    .csrUnsupportedName,
                    "the CSR asks for the name \(name), which Baton does not certify; only one baton:// URI, DNS names and IP addresses are allowed")
            }
        }
        guard let uri = batonURIs.first else {
            throw PKIError(
                .csrIdentityMissing,
                "the CSR asks for no baton:// identity; make it with `batond csr --host-id ID` on the host")
        }
        guard batonURIs.count == 1 else {
            throw PKIError(
                .csrIdentityAmbiguous,
                "the CSR asks for \(batonURIs.count) baton:// identities (\(batonURIs.joined(separator: ", "))); exactly one is allowed")
        }
        return (try PeerIdentity(uri: uri), names)
    }
}
