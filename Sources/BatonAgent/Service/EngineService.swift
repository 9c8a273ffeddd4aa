import BatonProtocol
import Logging
import ServiceLifecycle

/// Runs the engine's deployments, and is their part of a graceful shutdown. Every
/// accepted deployment runs in a child task of this service (`runDeployments`), so none
/// outlives it.
///
/// The service is first in the group, so it is told to stop last, after the API stopped
/// accepting requests. Running deployments then get `grace` to reach their end; whatever
/// still runs after that is cancelled: it stops between steps, left exactly as its
/// durable record says, and the next start reconciles it (a deployment interrupted
/// before the switch is recorded failed, one after it is rolled back). The switch itself
/// is a single `rename(2)`, so no instant leaves `current` half-switched.
struct EngineService: Service {
    let engine: DeploymentEngine
    let grace: Duration
    let logger: Logger

    func run() async throws {
        let engine = self.engine
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await engine.runDeployments() }
            try? await gracefulShutdown()
            await stop()
            group.cancelAll()
        }
    }

    /// Waits up to `grace` for the deployments in flight. Returns when they ended, when
    /// the grace ran out, or when this task is cancelled (the group gave up waiting).
    private func stop() async {
        // The API no longer takes requests: no refusal is left only counted.
        await engine.flushAudit()
        let inFlight = await engine.inFlight
        guard !inFlight.isEmpty else { return }
        logger.notice(
            "waiting for running deployments before stopping",
            metadata: ["baton.deployment.ids": "\(inFlight.joined(separator: ","))", "baton.grace": "\(grace)"])
        let clock = ContinuousClock()
        let deadline = clock.now + grace
        while await engine.hasWork, clock.now < deadline {
            do {
                try await Task.sleep(for: .milliseconds(20), clock: clock)
            } catch {
                return
            }
        }
    }
}
