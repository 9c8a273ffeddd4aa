import BatonProtocol
import ServiceLifecycle

/// Derives the deployment metrics from the engine's public API, so the engine reports
/// nothing itself: it follows each deployment the API starts through `engine.events(id)`
/// to its terminal phase, then reads the record (result, phase timings, failed health
/// attempts) and the app's status (the live release).
public final class DeploymentObserver: Service, Sendable {
    private let engine: DeploymentEngine
    private let metrics: AgentMetrics
    private let ids: AsyncStream<String>
    private let continuation: AsyncStream<String>.Continuation

    public init(engine: DeploymentEngine, metrics: AgentMetrics) {
        self.engine = engine
        self.metrics = metrics
        let (stream, continuation) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .unbounded)
        ids = stream
        self.continuation = continuation
    }

    /// Follows a deployment to its end (called by the API when it starts one).
    public func follow(_ id: String) { continuation.yield(id) }

    public func run() async {
        await refreshReleases()
        await withDiscardingTaskGroup { group in
            for await id in ids.cancelOnGracefulShutdown() {
                group.addTask { await self.observe(id) }
            }
        }
    }

    /// The live release of every app (at start, after reconciliation).
    public func refreshReleases() async {
        for app in await engine.apps() { metrics.currentRelease(app: app.app, release: app.current) }
    }

    private func observe(_ id: String) async {
        guard let events = await engine.events(id) else { return }
        for await _ in events.cancelOnGracefulShutdown() {}
        guard let record = await engine.record(id), record.phase.isTerminal else { return }
        metrics.deploymentEnded(record)
        metrics.currentRelease(app: record.app, release: await engine.appStatus(record.app)?.current)
    }
}
