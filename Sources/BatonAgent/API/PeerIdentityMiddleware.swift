import Hummingbird
import Logging
import NIOSSL

/// Lets a request through only if the client certificate (already verified against the
/// fleet CA during the handshake) carries a controller identity,
/// `baton://controller/<name>`. An agent's certificate, or any other, is answered 403
/// `forbidden_identity`: a stolen agent certificate cannot deploy to its neighbours.
///
/// The certificate is read with `channel.nioSSL_peerCertificate()`, which hops to the
/// channel's event loop; request handlers do not run there.
struct PeerIdentityMiddleware: RouterMiddleware {
    typealias Context = AgentRequestContext

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let certificate: NIOSSLCertificate?
        do {
            certificate = try await context.channel.nioSSL_peerCertificate().get()
        } catch {
            throw Self.forbidden("the connection carries no TLS client certificate")
        }
        guard let certificate else { throw Self.forbidden("the connection carries no TLS client certificate") }
        switch CertificateIdentity.of(certificate) {
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
        RequestError(status: 403, code: "forbidden_identity", message: message)
    }
}
