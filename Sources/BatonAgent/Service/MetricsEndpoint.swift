import Hummingbird
import HummingbirdCore
import Logging
import NIOCore

/// The Prometheus endpoint: `GET /metrics` in the text exposition format, plain HTTP on
/// its own listener (`metricsListen`; off unless set, loopback is the sensible choice) so that scraping needs no
/// client certificate and the API port never serves anything unauthenticated.
enum MetricsEndpoint {
    static func application(
        metrics: AgentMetrics, address: ListenAddress, logger: Logger,
        onListening: @escaping @Sendable (SocketAddress?) async -> Void
    ) -> Application<RouterResponder<BasicRequestContext>> {
        let router = Router()
        router.get("/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: metrics.exposition())))
        }
        return Application(
            router: router,
            server: .http1(configuration: .init(idleTimeout: .seconds(30))),
            configuration: ApplicationConfiguration(
                address: .hostname(address.host, port: address.port),
                availableConnectionsDelegate: MaximumAvailableConnections(16)),
            onServerRunning: { channel in await onListening(channel.localAddress) },
            logger: logger)
    }
}
