import BatonPKI
import BatonProtocol
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// Many simulated agents in one process: each its own certificate from the fleet CA (for
/// `baton://agent/<host-id>`, as `baton pki issue agent` makes it) and its own listener on
/// 127.0.0.1, all sharing one event loop group. TLS is the agent's: TLS 1.3 only, a client
/// certificate from the fleet CA required (docs/design.md §2).
struct SimulatorFleet {
    /// A host and where it answers (nil: it refuses connections, nothing listens).
    struct Listening {
        var hostID: String
        var port: Int
        var refuses: Bool
    }

    let ca: FleetCA
    let policy: TrustPolicy
    let environment: String
    let settings: SimulationSettings

    /// Issues a certificate for each host and binds its listener; hosts drawn to refuse
    /// connections get a port that is bound, then closed, so connecting there is refused.
    func start(hostIDs: [String], group: any EventLoopGroup) async throws(LoadSimError) -> [Listening] {
        let trustRoots: [NIOSSLCertificate]
        do {
            trustRoots = try NIOSSLCertificate.fromPEMBytes(Array(ca.certificatePEM.utf8))
        } catch {
            throw LoadSimError(.caUnusable, "the fleet CA certificate in '\(ca.directory)' is not usable for TLS: \(error)")
        }
        var listening: [Listening] = []
        for hostID in hostIDs {
            let issued: IssuedCredential
            do {
                issued = try ca.issueAgent(hostID: hostID, ipAddresses: ["127.0.0.1"])
            } catch {
                throw LoadSimError(.caUnusable, "cannot issue a certificate for '\(hostID)': \(error)")
            }
            let (context, key) = try Self.tls(issued, trustRoots: trustRoots)
            let agent = SimulatedAgent(
                hostID: hostID, environment: environment, settings: settings, policy: policy, signingKey: key,
                certificatePEM: issued.certificate.pem)
            let channel: any Channel
            do {
                channel = try await ServerBootstrap(group: group)
                    .serverChannelOption(.backlog, value: 256)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                    .childChannelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                            try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                            try channel.pipeline.syncOperations.addHandler(AgentHTTPHandler(agent: agent))
                        }
                    }
                    .bind(host: "127.0.0.1", port: 0).get()
            } catch {
                throw LoadSimError(.listenFailed, "cannot listen on 127.0.0.1 for '\(hostID)': \(error)")
            }
            let port = channel.localAddress?.port ?? 0
            let refuses = settings.refusesConnections(hostID)
            if refuses {
                let closed = channel.eventLoop.makePromise(of: Void.self)
                channel.close(promise: closed)
                try? await closed.futureResult.get()
            }
            listening.append(Listening(hostID: hostID, port: port, refuses: refuses))
        }
        return listening
    }

    /// The agent's server context: mutual TLS 1.3, the fleet CA as the only root.
    static func tls(
        _ issued: IssuedCredential, trustRoots: [NIOSSLCertificate]
    ) throws(LoadSimError) -> (NIOSSLContext, P256.Signing.PrivateKey) {
        do {
            let certificate = try NIOSSLCertificate(bytes: Array(issued.certificate.pem.utf8), format: .pem)
            let key = try NIOSSLPrivateKey(bytes: Array(issued.key.pem.utf8), format: .pem)
            var configuration = TLSConfiguration.makeServerConfigurationWithMTLS(
                certificateChain: [.certificate(certificate)], privateKey: .privateKey(key), trustRoots: .certificates(trustRoots))
            configuration.minimumTLSVersion = .tlsv13
            configuration.maximumTLSVersion = .tlsv13
            configuration.certificateVerification = .noHostnameVerification
            configuration.additionalTrustRoots = []
            configuration.sendCANameList = true
            return (try NIOSSLContext(configuration: configuration), try P256.Signing.PrivateKey(pemRepresentation: issued.key.pem))
        } catch {
            throw LoadSimError(.tlsInvalid, "cannot make a TLS context for \(issued.certificate.identity.uri): \(error)")
        }
    }
}
