import BatonProtocol
import Crypto
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import HummingbirdCore
import Logging
import NIOCore
import NIOSSL
import Synchronization

/// The agent's TLS identity and trust, loaded from the files `batond.yaml` names: the
/// agent certificate (chain), its private key and the fleet CA.
///
/// The server context is mutual TLS 1.3 only; the trust roots are the fleet CA and
/// nothing else (never the system store); a client certificate chaining to it is
/// required (docs/toolchain-notes.md: `.noHostnameVerification` on a server requires one). Which
/// identity a client certificate must carry is checked per request by
/// `PeerIdentityMiddleware`.
public struct TLSMaterial: Sendable {
    public let context: NIOSSLContext
    /// This agent's identity as its certificate states it.
    public let identity: CertificateIdentity
    /// Lowercase hex serial number of the agent certificate.
    public let serial: String
    public let notValidBefore: Date
    public let notValidAfter: Date
    /// How many CA certificates are trusted.
    public let caCount: Int
    /// The certificate's key, for signing the audit head (nil if it is not P-256).
    public let signingKey: P256.Signing.PrivateKey?

    /// Reads and checks the files. `requireCurrent` refuses a certificate outside its
    /// validity period: `batond run` does not start with one (every controller would
    /// refuse it anyway, and an agent that looks up while nobody can reach it hides the
    /// problem), and a reload keeps the old one rather than switch to it.
    public static func load(
        _ files: AgentConfiguration.TLSFiles, hostID: String, now: Date = Date(), requireCurrent: Bool
    ) throws(AgentServiceError) -> TLSMaterial {
        do {
            try FilePermissions.check(files.privateKey, what: "agent's TLS private key", .secret)
            try FilePermissions.check(files.certificate, what: "agent certificate", .trusted)
            try FilePermissions.check(files.ca, what: "fleet CA certificate", .trusted)
        } catch {
            throw AgentServiceError(.insecurePermissions, "\(error.file ?? ""): \(error.message)")
        }
        let chain = try readCertificates(files.certificate, what: "certificate")
        let ca = try readCertificates(files.ca, what: "CA certificate")
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: files.privateKey, format: .pem)
        } catch {
            throw AgentServiceError(
                .tlsUnreadable,
                "\(files.privateKey): cannot read the private key (\(FileManager.default.fileExists(atPath: files.privateKey) ? "not a PEM private key, or not readable" : "no such file"))")
        }

        let leaf = chain[0]
        let identity: CertificateIdentity
        switch CertificateIdentity.of(leaf) {
        case .success(let found): identity = found
        case .failure(let problem):
            throw AgentServiceError(.tlsIdentityMismatch, "\(files.certificate): \(problem)")
        }
        guard identity == .agent(hostID: hostID) else {
            throw AgentServiceError(
                .tlsIdentityMismatch,
                "\(files.certificate) names \(identity.uri), but this agent's hostId is '\(hostID)'; issue it a certificate for baton://agent/\(hostID)")
        }
        let notBefore = Date(timeIntervalSince1970: TimeInterval(leaf.notValidBefore))
        let notAfter = Date(timeIntervalSince1970: TimeInterval(leaf.notValidAfter))
        if requireCurrent, !(notBefore...notAfter).contains(now) {
            let state = now < notBefore ? "is not valid yet (check this host's clock)" : "has expired"
            throw AgentServiceError(
                .tlsExpired,
                "\(files.certificate) \(state): it is valid from \(RFC3339.format(notBefore)) to \(RFC3339.format(notAfter)), and it is \(RFC3339.format(now)); renew it: `batond csr --host-id \(hostID)` here, then `baton pki sign-csr \(hostID).csr --role agent` where the fleet CA is (or `baton pki issue agent \(hostID)` there, with a new key), install the certificate, then start batond")
        }

        var configuration = TLSConfiguration.makeServerConfigurationWithMTLS(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key),
            trustRoots: .certificates(ca))
        configuration.minimumTLSVersion = .tlsv13
        configuration.maximumTLSVersion = .tlsv13
        configuration.certificateVerification = .noHostnameVerification
        configuration.additionalTrustRoots = []
        configuration.renegotiationSupport = .none
        // Tell clients which CA we accept, so one holding several certificates picks the right one.
        configuration.sendCANameList = true
        // When the agent closes a connection (an upload too slow, a handshake too long), a
        // peer that does not answer close_notify is cut off after this, not 5 s later:
        // reads go on until then, so the connection's slot would stay taken.
        configuration.shutdownTimeout = .seconds(1)
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw AgentServiceError(
                .tlsInvalid,
                "\(files.certificate), \(files.privateKey) and \(files.ca) do not make a TLS context (does the key belong to the certificate?): \(error)")
        }
        return TLSMaterial(
            context: context, identity: identity, serial: leaf.serialNumber.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(),
            notValidBefore: notBefore, notValidAfter: notAfter, caCount: ca.count,
            signingKey: FileManager.default.contents(atPath: files.privateKey).flatMap {
                try? P256.Signing.PrivateKey(pemRepresentation: String(decoding: $0, as: UTF8.self))
            })
    }

    private static func readCertificates(_ path: String, what: String) throws(AgentServiceError) -> [NIOSSLCertificate] {
        guard FileManager.default.fileExists(atPath: path) else {
            throw AgentServiceError(.tlsUnreadable, "\(path): the \(what) file does not exist")
        }
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMFile(path)
        } catch {
            throw AgentServiceError(.tlsUnreadable, "\(path): cannot read the \(what) (not PEM, or not readable): \(error)")
        }
        guard !certificates.isEmpty else {
            throw AgentServiceError(.tlsUnreadable, "\(path): no PEM certificate in the \(what) file")
        }
        return certificates
    }
}

/// The TLS material new connections use. SIGHUP replaces it; connections already open
/// keep the context they started with.
public final class TLSContextStore: Sendable {
    private let material: Mutex<TLSMaterial>

    public init(_ material: TLSMaterial) { self.material = Mutex(material) }

    public var current: TLSMaterial { material.withLock { $0 } }

    public func replace(with new: TLSMaterial) { material.withLock { $0 = new } }
}

/// Like HummingbirdTLS's `TLSChannel`, but takes the TLS context from a
/// `TLSContextStore` for every new connection, so a reload needs no restart. Also
/// reports refused handshakes (no client certificate, another CA, an old TLS version).
struct ReloadableTLSChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value

    let base: Base
    let store: TLSContextStore
    let gate: HandshakeGate
    let logger: Logger
    let onHandshakeFailure: @Sendable (_ code: String) -> Void

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let context = store.current.context
        let reportLogger = self.logger
        let report = onHandshakeFailure
        let peer = channel.remoteAddress?.ipAddress ?? "unknown"
        guard gate.enter(peer: peer) else {
            // Every handshake place is taken: this connection is closed before it costs
            // anything, and the slots that remain stay for connections already through.
            report("tls_handshake_limit")
            channel.close(promise: nil)
            return channel.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel)
        }
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
            try channel.pipeline.syncOperations.addHandler(
                HandshakeDeadline(gate: gate, peer: peer, onTimeout: { report("tls_handshake_timeout") }))
            try channel.pipeline.syncOperations.addHandler(
                TLSHandshakeReporter(logger: reportLogger, onFailure: { report("tls_handshake") }))
        }.flatMap {
            base.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

/// Logs a refused TLS handshake once per connection, with the peer's address: the
/// operator sees who tried to connect without an acceptable certificate.
final class TLSHandshakeReporter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    let logger: Logger
    let onFailure: @Sendable () -> Void
    private var reported = false

    init(logger: Logger, onFailure: @escaping @Sendable () -> Void) {
        self.logger = logger
        self.onFailure = onFailure
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !reported, case NIOSSLError.handshakeFailed(let reason) = error {
            reported = true
            logger.notice(
                "tls handshake refused",
                metadata: [
                    "baton.peer": "\(context.remoteAddress.hostAndPort)",
                    "baton.reason": "\(reason)",
                ])
            onFailure()
        }
        context.fireErrorCaught(error)
    }
}

extension Optional where Wrapped == SocketAddress {
    /// `127.0.0.1:7443` or `[::1]:7443`, for logs.
    var hostAndPort: String {
        guard let address = self else { return "unknown" }
        guard let ip = address.ipAddress, let port = address.port else { return "\(address)" }
        return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }
}
