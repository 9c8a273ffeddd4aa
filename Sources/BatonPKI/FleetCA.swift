import Crypto
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import X509

/// The fleet's certificate authority: a self-signed ECDSA P-256 certificate (`ca.pem`)
/// and its private key (`ca.key`, PKCS#8, mode 0600) in one directory. It issues the
/// agent and controller certificates of docs/design.md §2, and nothing else (path length 0).
public struct FleetCA: Sendable {
    /// File names inside the CA directory.
    public static let certificateFileName = "ca.pem"
    public static let keyFileName = "ca.key"
    /// The CA certificate's common name; a fleet name is added in parentheses.
    public static let commonName = "Baton fleet CA"
    /// About ten years: replacing a CA means re-issuing every certificate of the fleet.
    public static let defaultValidityDays = 3650
    /// Fleet names go into the CA's common name, which X.509 caps at 64 characters.
    public static let fleetNamePattern = "^[A-Za-z0-9][A-Za-z0-9 ._-]{0,39}$"

    /// The directory the CA was loaded from or created in.
    public let directory: String
    /// The CA certificate, to be installed on every agent and controller as the only trust root.
    public let certificate: Certificate
    let key: IdentityKey
    /// The CA's subject key identifier, which every issued certificate names as its authority's.
    let keyIdentifier: ArraySlice<UInt8>

    /// `<directory>/ca.pem`.
    public var certificatePath: String { Self.certificatePath(in: directory) }
    /// `<directory>/ca.key`.
    public var keyPath: String { Self.keyPath(in: directory) }
    /// The CA certificate as PEM.
    public var certificatePEM: String { CertificatePEM.encode(certificate) }

    /// Creates a new CA in `directory` (made with mode 0700 if missing) and writes
    /// `ca.key` (0600) and `ca.pem` (0644). Refuses with `ca_exists` if either file exists:
    /// a CA is never replaced by accident.
    ///
    /// - Parameters:
    ///   - name: An optional fleet name for the subject, e.g. `prod`: "Baton fleet CA (prod)".
    ///   - validityDays: Lifetime of the CA certificate.
    @discardableResult
    public static func create(
        in directory: String,
        name: String? = nil,
        validityDays: Int = defaultValidityDays,
        now: Date = Date()
    ) throws(PKIError) -> FleetCA {
        if let name, !isValidFleetName(name) {
            throw PKIError(.invalidName, "fleet name '\(name)' is not valid: it must match \(fleetNamePattern)")
        }
        guard (1...36500).contains(validityDays) else {
            throw PKIError(.invalidValidity, "a CA must be valid for 1 to 36500 days, not \(validityDays)")
        }
        let certificatePath = Self.certificatePath(in: directory), keyPath = Self.keyPath(in: directory)
        for path in [certificatePath, keyPath] where PEMFile.exists(path) {
            throw PKIError(
                .caExists,
                "'\(path)' already exists; a fleet CA is never overwritten. Use it with --ca \(directory), or choose another directory")
        }

        let key = IdentityKey()
        let subject: DistinguishedName
        let certificate: Certificate
        do {
            subject = try DistinguishedName {
                CommonName(name.map { "\(commonName) (\($0))" } ?? commonName)
            }
            let validity = CertificateProfile.validity(days: validityDays, from: now)
            certificate = try Certificate(
                version: .v3,
                serialNumber: CertificateProfile.serialNumber(),
                publicKey: key.publicKey,
                notValidBefore: validity.notBefore,
                notValidAfter: validity.notAfter,
                issuer: subject,
                subject: subject,
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try CertificateProfile.caExtensions(key: key.publicKey),
                issuerPrivateKey: key.certificateKey)
        } catch {
            throw PKIError(.internalError, "cannot build the CA certificate: \(error)")
        }

        try PEMFile.writeKeyPair(
            key: key.pem, to: keyPath, publicMaterial: CertificatePEM.encode(certificate), to: certificatePath)
        return try FleetCA(directory: directory, certificate: certificate, key: key)
    }

    /// Loads the CA in `directory`, checking that `ca.key` belongs to `ca.pem` and that
    /// `ca.pem` is a CA certificate.
    public static func load(from directory: String) throws(PKIError) -> FleetCA {
        let certificatePath = Self.certificatePath(in: directory), keyPath = Self.keyPath(in: directory)
        guard PEMFile.exists(certificatePath), PEMFile.exists(keyPath) else {
            let missing = PEMFile.exists(certificatePath) ? keyPath : certificatePath
            throw PKIError(
                .caMissing,
                "no fleet CA in '\(directory)' ('\(missing)' does not exist); create one with `baton pki init \(directory)` or point --ca at the CA directory")
        }
        let certificate: Certificate, key: IdentityKey
        do {
            certificate = try CertificatePEM.parse(try PEMFile.read(certificatePath, what: "CA certificate"))
            key = try IdentityKey(pem: try PEMFile.read(keyPath, what: "CA key"))
        } catch {
            throw PKIError(error.code, "\(directory): \(error.message)")
        }
        return try FleetCA(directory: directory, certificate: certificate, key: key)
    }

    init(directory: String, certificate: Certificate, key: IdentityKey) throws(PKIError) {
        guard certificate.publicKey == key.publicKey else {
            throw PKIError(.caInvalid, "'\(Self.keyPath(in: directory))' is not the key of '\(Self.certificatePath(in: directory))'")
        }
        guard case .isCertificateAuthority? = try? certificate.extensions.basicConstraints else {
            throw PKIError(.caInvalid, "'\(Self.certificatePath(in: directory))' is not a CA certificate (basicConstraints CA:true missing)")
        }
        self.directory = directory
        self.certificate = certificate
        self.key = key
        keyIdentifier =
            (try? certificate.extensions.subjectKeyIdentifier)?.keyIdentifier
            ?? CertificateProfile.keyIdentifier(of: certificate.publicKey)
    }

    static func certificatePath(in directory: String) -> String { "\(directory)/\(certificateFileName)" }
    static func keyPath(in directory: String) -> String { "\(directory)/\(keyFileName)" }

    static func isValidFleetName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...40).contains(bytes.count) else { return false }
        func alnum(_ b: UInt8) -> Bool { (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || (b >= 0x30 && b <= 0x39) }
        guard alnum(bytes[0]) else { return false }
        return bytes.dropFirst().allSatisfy { alnum($0) || $0 == 0x20 || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D }
    }
}
