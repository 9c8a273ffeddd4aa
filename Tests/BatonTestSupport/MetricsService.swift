import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A small service for metric-gate tests, on 127.0.0.1: it serves `/metrics` in
/// Prometheus's text format and makes its own traffic, 20 requests a second, counted by
/// status (`baton_test_requests_total{code=…}`, both codes always present) and timed in a
/// histogram (`baton_test_request_duration_seconds`). A test switches it between
/// `healthy` (every request 200 in 20 ms), `slow` (200 in 800 ms) and `erroring`
/// (every request 500). `GET /` answers 200 `ok` whatever the mode, so an http health
/// check passes and only the metric tells.
public final class MetricsService: Sendable {
    public enum Mode: String, Sendable {
        case healthy, slow, erroring
    }

    /// Requests a second the service pretends to serve.
    public static let rate = 20.0
    static let buckets: [Double] = [0.05, 0.25, 1]

    struct Counters {
        var mode: Mode
        var since: ContinuousClock.Instant
        var ok = 0.0
        var errors = 0.0
        var bucketCounts = [Double](repeating: 0, count: MetricsService.buckets.count)
        var count = 0.0
        var sum = 0.0

        /// Adds the requests served since the last look, all in the current mode.
        mutating func advance(to now: ContinuousClock.Instant) {
            let elapsed = since.duration(to: now)
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            since = now
            let requests = seconds * MetricsService.rate
            let latency = mode == .slow ? 0.8 : 0.02
            if mode == .erroring { errors += requests } else { ok += requests }
            for (index, bound) in MetricsService.buckets.enumerated() where latency <= bound {
                bucketCounts[index] += requests
            }
            count += requests
            sum += requests * latency
        }

        func exposition() -> String {
            var lines = [
                "# TYPE baton_test_requests_total counter",
                "baton_test_requests_total{code=\"200\"} \(ok)",
                "baton_test_requests_total{code=\"500\"} \(errors)",
                "# TYPE baton_test_request_duration_seconds histogram",
            ]
            for (index, bound) in MetricsService.buckets.enumerated() {
                lines.append("baton_test_request_duration_seconds_bucket{le=\"\(bound)\"} \(bucketCounts[index])")
            }
            lines += [
                "baton_test_request_duration_seconds_bucket{le=\"+Inf\"} \(count)",
                "baton_test_request_duration_seconds_sum \(sum)",
                "baton_test_request_duration_seconds_count \(count)",
            ]
            return lines.joined(separator: "\n") + "\n"
        }
    }

    final class State: Sendable {
        let counters: Mutex<Counters>
        init(_ mode: Mode) { counters = Mutex(Counters(mode: mode, since: .now)) }
    }

    private let channel: any Channel
    private let state: State
    public let port: Int

    public var mode: Mode {
        get { state.counters.withLock { $0.mode } }
        set {
            state.counters.withLock {
                $0.advance(to: .now)
                $0.mode = newValue
            }
        }
    }

    public static func start(_ mode: Mode = .healthy) async throws -> MetricsService {
        let state = State(mode)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(state: state))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return MetricsService(channel: channel, state: state)
    }

    private init(channel: any Channel, state: State) {
        self.channel = channel
        self.state = state
        port = channel.localAddress?.port ?? 0
    }

    public func stop() async {
        try? await channel.close()
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let state: State
        var head: HTTPRequestHead?

        init(state: State) { self.state = state }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
            case .body:
                break
            case .end:
                guard let head else { return }
                let body: String
                let status: HTTPResponseStatus
                if head.uri.hasPrefix("/metrics") {
                    body = state.counters.withLock {
                        $0.advance(to: .now)
                        return $0.exposition()
                    }
                    status = .ok
                } else if head.uri == "/" {
                    body = "ok\n"
                    status = .ok
                } else {
                    body = "not found\n"
                    status = .notFound
                }
                var headers = HTTPHeaders()
                headers.add(name: "content-type", value: "text/plain; version=0.0.4")
                headers.add(name: "content-length", value: "\(body.utf8.count)")
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
                var buffer = context.channel.allocator.buffer(capacity: body.utf8.count)
                buffer.writeString(body)
                context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}
