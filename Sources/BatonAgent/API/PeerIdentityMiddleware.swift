import BatonProtocol
import Hummingbird
import Logging
import NIOSSL

/// Lets a request through only if the client certificate (already verified against the
/// fleet CA during the handshake) carries a controller identity,
/// `baton://controller/<name>`. An agent's certificate, or any other, is answered 403
/// `forbidden_identity`: a stolen agent certificate cannot deploy to its neighbours.
struct PeerIdentityMiddleware: RouterMiddleware {
    typealias Context = AgentRequestContext

    let peer: PeerCertificateSource

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        guard let uris = await peer.uris(context) else {
            throw Self.forbidden("the connection carries no TLS client certificate")
        }
        switch CertificateIdentity.of(uris: uris) {
        case .success(.controller(let name)):
            var context = context
            context.controller = name
            context.logger[metadataKey: "baton.controller"] = "\(name)"
            return try await next(request, context)
        case .success(let other):
            throw Self.forbidden(
                "the client certificate names \(other.uri); only controllers (baton://controller/<name>) may call this API")
        case .failure(let problem):
            throw Self.forbidden("\(problem); only controllers (baton://controller/<name>) may call this API")
        }
    }

    static func forbidden(_ message: String) -> RequestError {
        RequestError(.forbiddenIdentity, message)
    }
}

/// Where the identity check finds the client certificate's subject alternative name
/// URIs: nil when the connection carries no certificate.
///
/// The daemon reads the TLS connection (`.tls`). The seam exists so that in-process
/// tests, which have no TLS connection, can name the peer they play; the real path is
/// tested end to end over TLS.
struct PeerCertificateSource: Sendable {
    let uris: @Sendable (AgentRequestContext) async -> [String]?

    /// The certificate of the request's TLS connection, read with
    /// `channel.nioSSL_peerCertificate()`, which hops to the channel's event loop
    /// (request handlers do not run there).
    static let tls = PeerCertificateSource { context in
        guard let certificate = try? await context.channel.nioSSL_peerCertificate().get() else { return nil }
        return CertificateIdentity.sanURIs(of: certificate)
    }
}
