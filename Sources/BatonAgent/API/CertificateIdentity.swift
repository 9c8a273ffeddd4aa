import BatonProtocol
import NIOSSL

/// The Baton identity a certificate carries: the single `baton://agent/<host-id>` or
/// `baton://controller/<name>` URI among its subject alternative names (docs/design.md §2).
///
/// The same rules as BatonPKI's `PeerIdentity` (which BatonAgent does not link): exactly
/// one URI with the `baton` scheme in any letter case, so `BATON://...` cannot smuggle in a
/// second identity; no port, path, query or upper case; the name follows `Name`.
/// Chain validation is the TLS layer's job; this only names the peer.
public enum CertificateIdentity: Sendable, Hashable, CustomStringConvertible {
    case agent(hostID: String)
    case controller(name: String)

    public var uri: String {
        switch self {
        case .agent(let hostID): "baton://agent/\(hostID)"
        case .controller(let name): "baton://controller/\(name)"
        }
    }

    public var description: String { uri }

    /// Parses `baton://agent/<host-id>` or `baton://controller/<name>`, nothing else.
    public init?(uri: String) {
        let prefix = "baton://"
        guard uri.hasPrefix(prefix) else { return nil }
        let parts = uri.dropFirst(prefix.count).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, Name.isValid(String(parts[1])) else { return nil }
        switch parts[0] {
        case "agent": self = .agent(hostID: String(parts[1]))
        case "controller": self = .controller(name: String(parts[1]))
        default: return nil
        }
    }

    /// The identity of a certificate, or why it has none.
    public static func of(_ certificate: NIOSSLCertificate) -> Result<CertificateIdentity, IdentityProblem> {
        var uris: [String] = []
        for name in certificate._subjectAlternativeNames() where name.nameType == .uri {
            uris.append(name.contents.withUnsafeBufferPointer { String(decoding: $0, as: UTF8.self) })
        }
        return of(uris: uris)
    }

    static func of(uris: [String]) -> Result<CertificateIdentity, IdentityProblem> {
        let baton = uris.filter { $0.lowercased().hasPrefix("baton:") }
        guard baton.count == 1 else {
            return .failure(
                IdentityProblem(
                    baton.isEmpty
                        ? "the certificate carries no baton:// identity (it was not issued by `baton pki`)"
                        : "the certificate carries \(baton.count) baton:// identities; exactly one is allowed"))
        }
        guard let identity = CertificateIdentity(uri: baton[0]) else {
            return .failure(IdentityProblem("'\(baton[0])' is not a Baton identity (baton://agent/<host-id> or baton://controller/<name>)"))
        }
        return .success(identity)
    }

    /// Why a certificate names no usable identity.
    public struct IdentityProblem: Error, Sendable, Equatable, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }
}
