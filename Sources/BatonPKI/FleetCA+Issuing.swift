import Crypto
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import X509

extension FleetCA {
    /// Default lifetime of agent certificates: 397 days, the CA/Browser Forum ceiling, so a
    /// yearly renewal always has a month of slack.
    public static let defaultAgentValidityDays = 397
    /// Default lifetime of controller certificates.
    public static let defaultControllerValidityDays = 397
    /// Longest lifetime a leaf certificate may be given.
    public static let maximumLeafValidityDays = 3650

    /// Issues an agent certificate (TLS server and client) with a new key:
    /// `baton://agent/<hostID>` plus the given DNS names and IPv4/IPv6 addresses.
    public func issueAgent(
        hostID: String,
        dnsNames: [String] = [],
        ipAddresses: [String] = [],
        validityDays: Int = defaultAgentValidityDays,
        now: Date = Date()
    ) throws(PKIError) -> IssuedCredential {
        let identity = try PeerIdentity(role: .agent, name: hostID)
        let names = try AlternativeNames(dnsNames: dnsNames, ipAddresses: ipAddresses)
        let key = IdentityKey()
        let certificate = try issue(identity: identity, names: names, publicKey: key.publicKey, validityDays: validityDays, now: now)
        return IssuedCredential(certificate: certificate, key: key)
    }

    /// Issues a controller certificate (TLS client only) with a new key:
    /// `baton://controller/<name>`.
    public func issueController(
        name: String,
        validityDays: Int = defaultControllerValidityDays,
        now: Date = Date()
    ) throws(PKIError) -> IssuedCredential {
        let identity = try PeerIdentity(role: .controller, name: name)
        let key = IdentityKey()
        let certificate = try issue(
            identity: identity, names: AlternativeNames(), publicKey: key.publicKey, validityDays: validityDays, now: now)
        return IssuedCredential(certificate: certificate, key: key)
    }

    /// Signs a CSR as a certificate of `role`, after checking that its key is P-256
    /// (`wrong_key_type`), that it is signed by that key (`csr_signature_invalid`), and
    /// that it asks for exactly one `baton://` identity of that role
    /// (`csr_identity_missing`, `csr_identity_ambiguous`, `csr_identity_mismatch`).
    /// Only the identity and the DNS/IP names are taken from the CSR (agents only); its
    /// subject and any other extension it asks for are ignored.
    public func sign(
        _ request: SigningRequest,
        as role: PeerIdentity.Role,
        validityDays: Int? = nil,
        now: Date = Date()
    ) throws(PKIError) -> PeerCertificate {
        guard P256.Signing.PublicKey(request.csr.publicKey) != nil else {
            throw PKIError(
                .wrongKeyType,
                "the CSR's key is \(IdentityKey.describeType(of: request.csr.publicKey)), but Baton uses ECDSA P-256 keys only")
        }
        guard request.isSignatureValid else {
            throw PKIError(
                .csrSignatureInvalid,
                "the CSR's signature does not verify against its own key: it was altered after it was made; make a new one on the host")
        }
        let (identity, names) = try request.requestedNames()
        guard identity.role == role else {
            throw PKIError(
                .csrIdentityMismatch,
                "the CSR asks for \(identity.uri), a \(identity.role.rawValue) identity, but is being signed as \(role.rawValue); check the role, and refuse the CSR if a host asked for an identity it should not have")
        }
        if role == .controller, !names.isEmpty {
            throw PKIError(
                .csrUnsupportedName,
                "the CSR asks for DNS or IP names (\((names.dnsNames + names.ipAddresses).joined(separator: ", "))); controller certificates carry only their baton:// identity")
        }
        let days = validityDays ?? (role == .agent ? Self.defaultAgentValidityDays : Self.defaultControllerValidityDays)
        return try issue(identity: identity, names: names, publicKey: request.csr.publicKey, validityDays: days, now: now)
    }

    /// The one place leaf certificates are made.
    func issue(
        identity: PeerIdentity,
        names: AlternativeNames,
        publicKey: Certificate.PublicKey,
        validityDays: Int,
        now: Date
    ) throws(PKIError) -> PeerCertificate {
        guard (1...Self.maximumLeafValidityDays).contains(validityDays) else {
            throw PKIError(
                .invalidValidity, "a certificate must be valid for 1 to \(Self.maximumLeafValidityDays) days, not \(validityDays)")
        }
        guard certificate.notValidAfter > now else {
            throw PKIError(
                .caExpired,
                "the fleet CA in '\(directory)' expired on \(certificate.notValidAfter); create a new CA and re-issue every certificate")
        }
        var names = names
        if let reserved = names.dnsNames.first(where: { $0.hasSuffix(PeerIdentity.agentTLSNameSuffix) }) {
            // Only the CA puts names under this suffix, each into its own host's
            // certificate: a host asking for one could impersonate another host.
            throw PKIError(
                .invalidDNSName,
                "'\(reserved)' is reserved for agent identities and is added by the CA itself; leave it out")
        }
        if case .agent(let hostID) = identity {
            guard let tlsName = PeerIdentity.agentTLSName(hostID: hostID) else {
                throw PKIError(
                    .invalidName,
                    "host id '\(hostID)' cannot be an agent's TLS name: use lower-case letters, digits, dots and hyphens (no underscores, no '..')")
            }
            try names.addDNSName(tlsName)
        }
        var validity = CertificateProfile.validity(days: validityDays, from: now)
        // A leaf never outlives its CA: past that date it could not be verified anyway.
        validity.notAfter = min(validity.notAfter, certificate.notValidAfter)
        let issued: Certificate
        do {
            issued = try Certificate(
                version: .v3,
                serialNumber: CertificateProfile.serialNumber(),
                publicKey: publicKey,
                notValidBefore: validity.notBefore,
                notValidAfter: validity.notAfter,
                issuer: certificate.subject,
                subject: try DistinguishedName { CommonName(identity.name) },
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try CertificateProfile.leafExtensions(
                    identity: identity, names: names, key: publicKey, issuerKeyIdentifier: keyIdentifier),
                issuerPrivateKey: key.certificateKey)
        } catch {
            throw PKIError(.internalError, "cannot build the certificate for \(identity): \(error)")
        }
        return try PeerCertificate(issued)
    }
}
