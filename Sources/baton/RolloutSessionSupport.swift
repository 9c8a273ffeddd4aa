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
        let summary: RolloutSummary
        do {
            summary = try await session.run(request, signers: signers, mode: mode)
        } catch {
            await notifying?.notifier.drain()
            throw error.command
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

extension ControllerError {
    /// The exit status a command ends with on this error (README): 4 when another rollout
    /// holds the lock, 1 when a rollback found nothing to do, 2 for every usage or
    /// configuration error.
    var exitStatus: Int32 {
        switch code {
        case .lockHeld: 4
        case .nothingToRollBack: CLIError.Status.failure
        default: CLIError.Status.usage
        }
    }

    /// The error as the command reports it, with its exit status.
    var command: CLIError { CLIError(code: code.rawValue, message: message, exitCode: exitStatus) }
}
