import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// One HTTP/1.1 GET over one connection, its body streamed to the caller chunk by chunk
/// with backpressure (the connection reads no faster than the caller writes), never
/// collected. Bounded by an idle timeout (no byte from the server for that long closes
/// the connection) and by the fetch's deadline (the connection is closed when it comes);
/// a cancelled task closes it too. The agent links no HTTP client library: NIO's HTTP/1
/// codec and TLS handler, which the agent has anyway, are all a GET needs.
struct HTTPGet: Sendable {
    let group: any EventLoopGroup
    /// For `https://` URLs; nil refuses them.
    let tls: NIOSSLContext?

    /// How an exchange ended, when it did not throw what the caller threw.
    enum End: Sendable, Equatable {
        /// The whole response arrived.
        case complete
        /// The caller took the head and wanted no body (a redirect, an error status).
        case headOnly
        /// The connection failed or closed before the response ended: why, for people.
        case cut(String)
        /// TLS refused the server (its certificate, its name, the protocol): retrying
        /// cannot help.
        case tlsRefused(String)
        /// The fetch's deadline closed the connection.
        case deadline
    }

    /// Sends `GET url` with `headers`; `onHead` sees the final response head and says
    /// whether to read its body, `onBody` gets each chunk of it. What either throws ends
    /// the exchange and is thrown from here.
    func exchange(
        _ url: ArtifactURL, headers extra: [(String, String)], idleTimeout: TimeAmount, deadline: NIODeadline,
        onHead: (FetchResponseHead) throws(AgentError) -> Bool,
        onBody: (ByteBuffer) async throws(AgentError) -> Void
    ) async throws(AgentError) -> End {
        let remaining = deadline - .now()
        guard remaining > .zero else { return .deadline }
        let tls: NIOSSLContext?
        if url.isHTTPS {
            guard let context = self.tls else { return .tlsRefused("no TLS configuration for https") }
            tls = context
        } else {
            tls = nil
        }
        let watch = ExchangeWatch()
        let serverName = url.hostIsAddress ? nil : url.host
        let channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(min(remaining, idleTimeout))
                .connect(host: url.host, port: url.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let sync = channel.pipeline.syncOperations
                        // First in the pipeline: it sees raw bytes, so a stalled TLS handshake counts too.
                        try sync.addHandler(IdleStateHandler(readTimeout: idleTimeout))
                        try sync.addHandler(IdleCloser(watch: watch))
                        if let tls { try sync.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: serverName)) }
                        try sync.addHTTPClientHandlers()
                        return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            if deadline <= .now() { return .deadline }
            return .cut("cannot connect to \(url.origin): \(Self.describe(error))")
        }
        let raw = channel.channel
        let timer = raw.eventLoop.scheduleTask(deadline: deadline) {
            watch.note(.deadline)
            raw.close(promise: nil)
        }
        defer { timer.cancel() }

        var head = HTTPHeaders()
        head.add(name: "Host", value: url.hostHeader)
        head.add(name: "User-Agent", value: "batond")
        head.add(name: "Accept", value: "*/*")
        // Identity only: the digest is of the bytes as stored, never of a decoding.
        head.add(name: "Accept-Encoding", value: "identity")
        for (name, value) in extra { head.add(name: name, value: value) }
        let request = HTTPRequestHead(version: .http1_1, method: .GET, uri: url.target, headers: head)

        do {
            return try await withTaskCancellationHandler {
                try await channel.executeThenClose { inbound, outbound in
                    try await outbound.write(.head(request))
                    try await outbound.write(.end(nil))
                    var reading = false
                    for try await part in inbound {
                        switch part {
                        case .head(let response):
                            // 1xx answers are interim; the real one follows.
                            guard response.status.code >= 200 else { continue }
                            reading = try onHead(Self.fetchHead(response))
                            if !reading { return End.headOnly }
                        case .body(let buffer):
                            if reading { try await onBody(buffer) }
                        case .end:
                            return End.complete
                        }
                    }
                    return End.cut("the connection closed before the response ended")
                }
            } onCancel: {
                raw.close(promise: nil)
            }
        } catch let error as AgentError {
            throw error
        } catch {
            switch watch.reason {
            case .deadline: return .deadline
            case .idle: return .cut("no byte arrived for \(idleTimeout.nanoseconds / 1_000_000) ms")
            case nil: break
            }
            if Self.isTLSRefusal(error) { return .tlsRefused(Self.describe(error)) }
            return .cut(Self.describe(error))
        }
    }

    static func fetchHead(_ response: HTTPResponseHead) -> FetchResponseHead {
        let headers = response.headers
        return FetchResponseHead(
            status: Int(response.status.code), reason: response.status.reasonPhrase,
            contentLength: headers.first(name: "Content-Length").flatMap { UInt64($0) },
            contentRange: headers.first(name: "Content-Range"), contentType: headers.first(name: "Content-Type"),
            location: headers.first(name: "Location"), etag: headers.first(name: "ETag"),
            lastModified: headers.first(name: "Last-Modified"))
    }

    /// A handshake the server's certificate or protocol failed: the server is not one the
    /// trust setting accepts, or does not speak TLS as asked, which no retry changes. A
    /// handshake cut short (EOF, reset) is not one of these: it is retried like any cut.
    /// BoringSSL's reason is only text, so the permanent ones are matched by name; anything
    /// not matched is retried, within the attempts and the deadline.
    static func isTLSRefusal(_ error: any Error) -> Bool {
        if let error = error as? NIOSSLExtraError {
            return error == .failedToValidateHostname || error == .serverHostnameImpossibleToMatch
        }
        guard let error = error as? NIOSSLError, case .handshakeFailed(let inner) = error else { return false }
        let text = "\(inner)"
        return permanentHandshakeFailures.contains { text.contains($0) }
    }

    static let permanentHandshakeFailures = [
        "CERTIFICATE_VERIFY_FAILED", "WRONG_VERSION_NUMBER", "UNSUPPORTED_PROTOCOL", "NO_SHARED_CIPHER",
        "TLSV1_ALERT_PROTOCOL_VERSION", "SSLV3_ALERT_HANDSHAKE_FAILURE", "TLSV1_ALERT_UNKNOWN_CA", "TLSV1_ALERT_ACCESS_DENIED",
    ]

    static func describe(_ error: any Error) -> String {
        if let error = error as? NIOSSLError, case .handshakeFailed(let inner) = error {
            return "TLS handshake failed: \(inner)"
        }
        if let error = error as? NIOSSLExtraError { return "TLS: \(error)" }
        if let error = error as? NIOSSLError, case .uncleanShutdown = error {
            return "the connection closed before the response ended"
        }
        if let error = error as? IOError { return error.description }
        if error is HTTPParserError { return "the response was cut or malformed (\(error))" }
        return "\(error)"
    }
}

/// Why the agent itself closed a connection, so the error it causes reads as that.
final class ExchangeWatch: Sendable {
    enum Reason: Sendable { case idle, deadline }
    private let state = Mutex<Reason?>(nil)

    func note(_ reason: Reason) { state.withLock { if $0 == nil { $0 = reason } } }
    var reason: Reason? { state.withLock { $0 } }
}

/// Closes the connection when `IdleStateHandler` says nothing was read for its timeout.
final class IdleCloser: ChannelInboundHandler, Sendable {
    typealias InboundIn = NIOAny
    let watch: ExchangeWatch

    init(watch: ExchangeWatch) { self.watch = watch }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? IdleStateHandler.IdleStateEvent, event == .read {
            watch.note(.idle)
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
