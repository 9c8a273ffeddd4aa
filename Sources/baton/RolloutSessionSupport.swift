import BatonCLISupport
import BatonController
import Foundation

extension ControllerContext {
    /// Agent clients from the configured certificate, key and CA.
    var agentClients: AgentClientFactory {
        let configuration = self.configuration
        return { hosts, retry throws(ControllerError) in try configuration.agentClient(for: hosts, retry: retry) }
    }

    /// Runs `request` in a rollout session, with progress as `output` asks and notices on
    /// standard error; the exit status.
    func runRollout(
        _ request: RolloutRequest, signers: [String], output: OutputOptions, lockWait: TimeInterval = 0, mode: RolloutSession.Mode = .run
    ) async throws(CLIError) -> Int32 {
        let renderer = output.renderer(hosts: request.hosts.map(\.id))
        let notifying = notifyingRenderer(request, base: renderer)
        var session = RolloutSession(
            history: try history(), state: state, makeClient: agentClients, progress: notifying ?? renderer,
            notify: { Output.error($0) })
        session.lockWait = lockWait
        if let lease = configuration.lockLease { session.lease = lease }
        let summary: RolloutSummary
        do {
            summary = try await session.run(request, signers: signers, mode: mode)
        } catch {
            await notifying?.notifier.drain()
            throw error.cli
        }
        // The session shows no summary for a rollout stopped at once; its hooks still hear of it.
        if summary.exitStatus == RolloutSession.stoppedAtOnce { notifying?.notifyFinished(summary) }
        // Bounded: a receiver that never answers costs a few seconds at exit, never the rollout.
        await notifying?.notifier.drain()
        return summary.exitStatus
    }

    /// `base` with the configured webhooks told of the rollout's milestones; nil without any.
    private func notifyingRenderer(_ request: RolloutRequest, base: any ProgressRenderer) -> NotifyingRenderer? {
        guard !configuration.notifications.isEmpty else { return nil }
        let manifest = request.manifest
        let identity = RolloutIdentity(
            app: manifest.app, release: manifest.release, serial: manifest.serial, environment: manifest.environment,
            actor: ControllerActor.current, hosts: request.hosts.count)
        let notifier = WebhookNotifier(hooks: configuration.notifications, warn: { Output.error($0) })
        return NotifyingRenderer(base: base, notifier: notifier, identity: identity)
    }
}
