import NIOCore
import NIOHTTP1

/// What an HTTP health probe saw: the status and the first bytes of the body.
struct HTTPProbeResponse: Sendable, Equatable {
    var status: Int
    var body: [UInt8]
}

/// Collects one HTTP response: its status and up to `bodyLimit` bytes of its body, then
/// completes the promise. It does not wait for the rest of a large body, nor for any body
/// when none is needed: a health probe has all it needs once it can decide.
final class HTTPResponseCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let promise: EventLoopPromise<HTTPProbeResponse>
    private let bodyLimit: Int
    private var status: Int?
    private var body: [UInt8] = []

    /// - Parameter bodyLimit: bytes of body kept; 0 completes at the response head.
    init(promise: EventLoopPromise<HTTPProbeResponse>, bodyLimit: Int) {
        self.promise = promise
        self.bodyLimit = bodyLimit
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            // 1xx responses are interim; the real one follows.
            guard head.status.code >= 200 else { return }
            status = Int(head.status.code)
            if bodyLimit == 0 { finish() }
        case .body(var buffer):
            guard status != nil, body.count < bodyLimit else { return }
            let wanted = min(buffer.readableBytes, bodyLimit - body.count)
            body += buffer.readBytes(length: wanted) ?? []
            if body.count >= bodyLimit { finish() }
        case .end:
            if status != nil { finish() }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        // A no-op when the response was already complete.
        promise.fail(ProbeFailure.closedEarly)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.close(promise: nil)
    }

    private func finish() {
        guard let status else { return }
        promise.succeed(HTTPProbeResponse(status: status, body: body))
    }
}
