import BatonProtocol
import NIOCore
import NIOHTTP1
import NIOPosix

/// The network half of health checking: an HTTP/1.1 GET or a bare TCP connect, each
/// bounded as a whole (resolution, connect, request, response) by one timeout.
struct NetworkProbe: Sendable {
    let group: any EventLoopGroup

    /// The most body an HTTP probe reads, for `bodyContains`.
    static let bodyLimit = 64 << 10

    /// One GET of `url`: the status, and the body's first 64 KiB when `readBody`.
    func http(_ url: HealthURL, readBody: Bool, timeout: BatonDuration) async -> Result<HTTPProbeResponse, ProbeFailure> {
        let bodyLimit = readBody ? Self.bodyLimit : 0
        return await exchange(host: url.host, port: url.port, timeout: timeout) { channel, promise in
            try channel.pipeline.syncOperations.addHTTPClientHandlers()
            try channel.pipeline.syncOperations.addHandler(HTTPResponseCollector(promise: promise, bodyLimit: bodyLimit))
        } start: { channel, promise in
            var headers = HTTPHeaders()
            headers.add(name: "Host", value: url.hostHeader)
            headers.add(name: "User-Agent", value: "batond")
            headers.add(name: "Accept", value: "*/*")
            headers.add(name: "Connection", value: "close")
            let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: url.target, headers: headers)
            channel.write(HTTPClientRequestPart.head(head), promise: nil)
            channel.writeAndFlush(HTTPClientRequestPart.end(nil)).whenFailure { promise.fail($0) }
        }
    }

    /// Whether a TCP connection to `host:port` can be established.
    func tcp(host: String, port: Int, timeout: BatonDuration) async -> Result<Void, ProbeFailure> {
        await exchange(host: host, port: port, timeout: timeout) { _, _ in
        } start: { _, promise in
            promise.succeed(())
        }
    }

    /// Connects, lets `start` begin the exchange on the connected channel, and waits for
    /// `promise`, which the pipeline (or `start`) completes. A timer on the same event
    /// loop fails it when the timeout runs out, whatever stage it is at; the channel is
    /// closed however it ends.
    private func exchange<Value: Sendable>(
        host: String, port: Int, timeout: BatonDuration,
        configure: @escaping @Sendable (any Channel, EventLoopPromise<Value>) throws -> Void,
        start: @escaping @Sendable (any Channel, EventLoopPromise<Value>) -> Void
    ) async -> Result<Value, ProbeFailure> {
        let eventLoop = group.next()
        // Fails instead of trapping when given a group NIOPosix cannot use.
        guard let bootstrap = ClientBootstrap(validatingGroup: eventLoop) else {
            return .failure(.unusableEventLoopGroup)
        }
        let promise = eventLoop.makePromise(of: Value.self)
        let limit = TimeAmount.milliseconds(Int64(clamping: timeout.milliseconds))
        let timer = eventLoop.scheduleTask(in: limit) { promise.fail(ProbeFailure.timedOut(timeout)) }
        bootstrap
            .connectTimeout(limit)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try configure(channel, promise) }
            }
            .connect(host: host, port: port)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    // Also closes a connection that completed after the timeout fired.
                    promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
                    start(channel, promise)
                case .failure(let error):
                    promise.fail(error)
                }
            }
        do {
            let value = try await promise.futureResult.get()
            timer.cancel()
            return .success(value)
        } catch {
            timer.cancel()
            return .failure(ProbeFailure.from(error, timeout: timeout))
        }
    }
}
