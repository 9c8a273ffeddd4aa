/// The grammar of Baton identities, the URIs the fleet CA puts among a certificate's
/// subject alternative names: `baton://agent/<host-id>` and `baton://controller/<name>`.
///
/// The one definition: the PKI (which issues and reads certificates) and the agent
/// (which names the peer of each TLS connection) both parse and print identities here,
/// so neither can accept a spelling the other refuses.
///
/// Strict on purpose: no port, path, query, fragment or upper case, and the name follows
/// ``Name``, so one identity has exactly one spelling.
public struct IdentityURI: Sendable, Hashable, CustomStringConvertible {
    /// The two kinds of certificate the fleet CA issues.
    public enum Role: String, Sendable, Hashable, CaseIterable {
        case agent
        case controller

        /// How a message names the role's name: "host id", "controller name".
        public var nameDescription: String { self == .agent ? "host id" : "controller name" }
    }

    /// The URI scheme of Baton identities.
    public static let scheme = "baton"

    public let role: Role
    /// The host id or controller name.
    public let name: String

    /// An identity from its parts; nil when `name` breaks the naming rule.
    public init?(role: Role, name: String) {
        guard Name.isValid(name) else { return nil }
        self.role = role
        self.name = name
    }

    /// Parses `baton://agent/<host-id>` or `baton://controller/<name>`, nothing else.
    public init?(_ uri: String) {
        let prefix = "\(Self.scheme)://"
        guard uri.hasPrefix(prefix) else { return nil }
        let parts = uri.dropFirst(prefix.count).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let role = Role(rawValue: String(parts[0])) else { return nil }
        self.init(role: role, name: String(parts[1]))
    }

    /// The URI form, e.g. `baton://agent/web-1`.
    public var uri: String { "\(Self.scheme)://\(role.rawValue)/\(name)" }

    public var description: String { uri }

    /// True when `uri` uses the `baton` scheme in any letter case: what counts as a claim
    /// to an identity, so that `BATON://...` cannot smuggle in a second one.
    public static func claimsIdentity(_ uri: String) -> Bool {
        uri.lowercased().hasPrefix("\(scheme):")
    }

    /// The identity among a certificate's SAN URIs: exactly one of them may claim one,
    /// and it must parse.
    public static func single(among uris: [String]) -> Result<IdentityURI, Problem> {
        let claims = uris.filter(claimsIdentity)
        guard claims.count == 1 else {
            return .failure(claims.isEmpty ? .none : .several(claims))
        }
        guard let identity = IdentityURI(claims[0]) else { return .failure(.invalid(claims[0])) }
        return .success(identity)
    }

    /// Why a list of URIs names no identity.
    public enum Problem: Error, Sendable, Equatable, CustomStringConvertible {
        /// No URI with the `baton` scheme.
        case none
        /// More than one (listed).
        case several([String])
        /// One, which is not a valid identity.
        case invalid(String)

        public var description: String {
            switch self {
            case .none:
                "the certificate carries no baton:// identity; it was not issued by `baton pki`"
            case .several(let uris):
                "the certificate carries \(uris.count) baton:// identities (\(uris.joined(separator: ", "))); exactly one is allowed"
            case .invalid(let uri):
                IdentityURI.notAnIdentity(uri)
            }
        }
    }

    /// The words for a string that is not an identity.
    public static func notAnIdentity(_ uri: String) -> String {
        "'\(uri)' is not a Baton identity; expected baton://agent/<host-id> or baton://controller/<name>"
    }
}
