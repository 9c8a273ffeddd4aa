import BatonProtocol
import X509

/// Who is at the other end of a TLS connection, as the fleet CA certified it: the single
/// `baton://` URI among the certificate's subject alternative names (docs/design.md §2).
///
/// The agent accepts API calls only from `.controller` identities, and the controller
/// checks that an agent presents `.agent(hostID:)` for the host it meant to reach: a
/// stolen agent certificate cannot deploy to its neighbours.
public enum PeerIdentity: Sendable, Hashable, CustomStringConvertible {
    /// A host running `batond`: `baton://agent/<host-id>`.
    case agent(hostID: String)
    /// An operator or CI controller: `baton://controller/<name>`.
    case controller(name: String)

    /// The two kinds of certificate the fleet CA issues.
    public typealias Role = IdentityURI.Role

    /// The URI scheme of Baton identities.
    public static let scheme = IdentityURI.scheme

    /// Makes an identity, checking the name against ``Name`` (BatonProtocol: the rule for every name Baton puts into paths and URIs).
    public init(role: Role, name: String) throws(PKIError) {
        guard let identity = IdentityURI(role: role, name: name) else {
            throw PKIError(.invalidName, "\(role.nameDescription) '\(name)' is not valid: it must match \(Name.pattern)")
        }
        self.init(identity)
    }

    /// Parses `baton://agent/<host-id>` or `baton://controller/<name>` by the one grammar,
    /// ``IdentityURI``.
    public init(uri: String) throws(PKIError) {
        guard let identity = IdentityURI(uri) else { throw PKIError(.invalidName, IdentityURI.notAnIdentity(uri)) }
        self.init(identity)
    }

    public init(_ identity: IdentityURI) {
        switch identity.role {
        case .agent: self = .agent(hostID: identity.name)
        case .controller: self = .controller(name: identity.name)
        }
    }

    /// The identity a certificate carries: exactly one `baton://` URI among its subject
    /// alternative names. Chain validation is the TLS layer's job; this only names the peer.
    public init(certificate: Certificate) throws(PKIError) {
        let names: SubjectAlternativeNames?
        do {
            names = try certificate.extensions.subjectAlternativeNames
        } catch {
            throw PKIError(.peerIdentityInvalid, "the certificate's subject alternative names are malformed: \(error)")
        }
        try self.init(uris: (names ?? SubjectAlternativeNames()).compactMap {
            if case .uniformResourceIdentifier(let uri) = $0 { uri } else { nil }
        })
    }

    /// The identity among a certificate's SAN URIs (``IdentityURI/single(among:)``).
    init(uris: [String]) throws(PKIError) {
        switch IdentityURI.single(among: uris) {
        case .success(let identity): self.init(identity)
        case .failure(let problem): throw PKIError(.peerIdentityInvalid, problem.description)
        }
    }

    /// True when `uri` uses the `baton` scheme, whatever its letter case.
    static func isBatonURI(_ uri: String) -> Bool {
        IdentityURI.claimsIdentity(uri)
    }

    public var role: Role {
        switch self {
        case .agent: .agent
        case .controller: .controller
        }
    }

    /// The host id or controller name.
    public var name: String {
        switch self {
        case .agent(let hostID): hostID
        case .controller(let name): name
        }
    }

    /// Every agent certificate also carries its identity as a DNS name,
    /// `<host-id>.agents.baton.invalid` (`.invalid` never resolves, RFC 2606). The controller
    /// sends it as SNI and the TLS library checks it; that check alone is not enough (it
    /// also accepts an IP address SAN matching the socket, which any agent at that address
    /// may carry), so the controller also checks the `baton://agent/<host-id>` URI on each
    /// connection before using it.
    public static let agentTLSNameSuffix = ".agents.baton.invalid"

    /// The DNS name of an agent identity, or nil when the host id is not a DNS label
    /// sequence (an underscore, say), which agent certificates refuse.
    public static func agentTLSName(hostID: String) -> String? {
        let name = hostID + agentTLSNameSuffix
        return AlternativeNames.isValidDNSName(name) ? name : nil
    }

    /// The SAN URI form, e.g. `baton://agent/web-1`.
    public var uri: String { "\(Self.scheme)://\(role.rawValue)/\(name)" }

    public var description: String { uri }
}
