import BatonProtocol
import Logging
import ServiceLifecycle

/// The engine's part of a graceful shutdown. It is first in the group, so it is told to
/// stop last, after the API stopped accepting requests. Running deployments then get
/// `grace` to reach their end; whatever still runs after that is left exactly as its
/// durable record says, and the next start reconciles it (a deployment interrupted
/// before the switch is recorded failed, one after it is rolled back). The switch itself
/// is a single `rename(2)`, so no instant leaves `current` half-switched.
struct EngineService: Service {
    let engine: DeploymentEngine
    let grace: Duration
    let logger: Logger

    func run() async throws {
        // Until shutdown: nothing to do; the engine works on its own tasks.
        try? await gracefulShutdown()
        // The API no longer takes requests: no refusal is left only counted.
        await engine.flushAudit()

        let running = await engine.apps().compactMap(\.activeDeploymentID)
        guard !running.isEmpty else { return }
        logger.notice(
            "waiting for running deployments before stopping",
            metadata: ["baton.deployment.ids": "\(running.joined(separator: ","))", "baton.grace": "\(grace)"])
        let engine = self.engine, grace = self.grace
        let ended = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                for id in running {
                    guard let events = await engine.events(id) else { continue }
                    for await _ in events {}
                }
                return !Task.isCancelled
            }
            group.addTask {
                try? await Task.sleep(for: grace)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        if ended { return }
        for app in await engine.apps() {
            guard let id = app.activeDeploymentID, let record = await engine.record(id) else { continue }
            logger.warning(
                "deployment left for reconciliation at the next start",
                metadata: [
                    "baton.app": "\(record.app)", "baton.deployment.id": "\(id)", "baton.phase": "\(record.phase.rawValue)",
                ])
        }
    }
}
