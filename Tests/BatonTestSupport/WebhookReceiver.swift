import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A webhook receiver on 127.0.0.1 for notification tests: a real HTTP/1.1 server that
/// records every request and answers from a script (`replies`, in order, then
/// `otherwise`). `.silent` never answers, as a hung receiver would.
public final class WebhookReceiver: Sendable {
    public enum Reply: Sendable, Equatable {
        case status(Int)
        case silent
    }

    public struct Request: Sendable {
        public var method: String
        public var path: String
        /// Header names in lowercase.
        public var headers: [String: String]
        public var body: [UInt8]

        public var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] }
    }

    fileprivate struct Script {
        var replies: [Reply]
        var otherwise: Reply
        var requests: [Request] = []
        var open: [any Channel] = []
    }

    private let channel: any Channel
    private let script: Script.Box
    public let port: Int

    /// `http://127.0.0.1:<port>/hook`.
    public var url: String { "http://127.0.0.1:\(port)/hook" }

    public var requests: [Request] { script.withLock { $0.requests } }

    public static func start(replies: [Reply] = [], otherwise: Reply = .status(200)) async throws -> WebhookReceiver {
        let script = Script.Box(Script(replies: replies, otherwise: otherwise))
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                script.withLock { $0.open.append(channel) }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(script: script))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return WebhookReceiver(channel: channel, script: script)
    }

    private init(channel: any Channel, script: Script.Box) {
        self.channel = channel
        self.script = script
        self.port = channel.localAddress?.port ?? 0
    }

    /// Waits until `count` requests arrived or `timeout` passed; the requests so far.
    public func waitFor(_ count: Int, timeout: Duration = .seconds(10)) async -> [Request] {
        let deadline = ContinuousClock.now + timeout
        while requests.count < count, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        return requests
    }

    /// Closes the listener and every connection, answered or not.
    public func stop() async {
        let open = script.withLock { $0.open }
        for connection in open { try? await connection.close() }
        try? await channel.close()
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let script: Script.Box
        var head: HTTPRequestHead?
        var body: [UInt8] = []

        init(script: Script.Box) { self.script = script }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                body = []
            case .body(var buffer):
                body += buffer.readBytes(length: buffer.readableBytes) ?? []
            case .end:
                guard let head else { return }
                let request = Request(
                    method: head.method.rawValue, path: head.uri,
                    headers: Dictionary(head.headers.map { ($0.name.lowercased(), $0.value) }, uniquingKeysWith: { $1 }), body: body)
                let reply = script.withLock { script -> Reply in
                    script.requests.append(request)
                    return script.replies.isEmpty ? script.otherwise : script.replies.removeFirst()
                }
                guard case .status(let code) = reply else { return }
                var headers = HTTPHeaders()
                headers.add(name: "content-length", value: "0")
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .init(statusCode: code), headers: headers))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}

extension WebhookReceiver.Script {
    /// The script and what was received, shared by the connections.
    final class Box: Sendable {
        private let value: Mutex<WebhookReceiver.Script>
        init(_ script: WebhookReceiver.Script) { value = Mutex(script) }
        func withLock<T: Sendable>(_ body: (inout WebhookReceiver.Script) -> T) -> T { value.withLock { body(&$0) } }
    }
}
