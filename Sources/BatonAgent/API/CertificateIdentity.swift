import BatonProtocol
import NIOSSL

/// The Baton identity a certificate carries: the single `baton://agent/<host-id>` or
/// `baton://controller/<name>` URI among its subject alternative names, read by the one
/// grammar, ``IdentityURI`` (BatonProtocol), which BatonPKI's `PeerIdentity` uses too.
/// Chain validation is the TLS layer's job; this only names the peer.
public enum CertificateIdentity: Sendable, Hashable, CustomStringConvertible {
    case agent(hostID: String)
    case controller(name: String)

    public init(_ identity: IdentityURI) {
        switch identity.role {
        case .agent: self = .agent(hostID: identity.name)
        case .controller: self = .controller(name: identity.name)
        }
    }

    /// Parses `baton://agent/<host-id>` or `baton://controller/<name>`, nothing else.
    public init?(uri: String) {
        guard let identity = IdentityURI(uri) else { return nil }
        self.init(identity)
    }

    public var uri: String {
        switch self {
        case .agent(let hostID): "\(IdentityURI.scheme)://\(IdentityURI.Role.agent.rawValue)/\(hostID)"
        case .controller(let name): "\(IdentityURI.scheme)://\(IdentityURI.Role.controller.rawValue)/\(name)"
        }
    }

    public var description: String { uri }

    /// The identity of a certificate, or why it has none.
    public static func of(_ certificate: NIOSSLCertificate) -> Result<CertificateIdentity, IdentityURI.Problem> {
        of(uris: sanURIs(of: certificate))
    }

    /// A certificate's subject alternative names of the URI kind.
    static func sanURIs(of certificate: NIOSSLCertificate) -> [String] {
        var uris: [String] = []
        for name in certificate._subjectAlternativeNames() where name.nameType == .uri {
            uris.append(name.contents.withUnsafeBufferPointer { String(decoding: $0, as: UTF8.self) })
        }
        return uris
    }

    static func of(uris: [String]) -> Result<CertificateIdentity, IdentityURI.Problem> {
        IdentityURI.single(among: uris).map(CertificateIdentity.init)
    }
}
