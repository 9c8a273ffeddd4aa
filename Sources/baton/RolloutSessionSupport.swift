import BatonCLISupport
import BatonController
import Foundation
import Synchronization

extension ControllerContext {
    /// Agent clients from the configured certificate, key and CA; over the shared
    /// connections (``withSharedConnections(to:_:)``) for the hosts they cover.
    var agentClients: AgentClientFactory {
        let configuration = self.configuration
        let shared = sharedConnections
        return { hosts, retry throws(ControllerError) in
            if let view = try shared?.client(for: hosts, retry: retry) { return view }
            return try configuration.agentClient(for: hosts, retry: retry)
        }
    }

    /// Runs `body` with a context whose agent clients share one set of connections to
    /// `hosts` (made when first needed, shut down afterwards on every path): a command
    /// that asks the same agents twice makes each TLS connection once.
    func withSharedConnections<T>(to hosts: [Fleet.Host], _ body: (ControllerContext) async throws -> T) async throws -> T {
        let shared = SharedAgentConnections(hosts: hosts, configuration: configuration)
        var context = self
        context.sharedConnections = shared
        do {
            let value = try await body(context)
            await shared.shutdown()
            return value
        } catch {
            await shared.shutdown()
            throw error
        }
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

/// One set of agent connections for a whole command, made by the first client asked for
/// (so a mistake found before any agent is asked is still reported first), then shared
/// by every client for the same hosts (``HTTPAgentClient/sharingConnections(for:retry:)``).
final class SharedAgentConnections: Sendable {
    let hosts: [Fleet.Host]
    let configuration: ControllerConfiguration
    private let made = Mutex<HTTPAgentClient?>(nil)

    init(hosts: [Fleet.Host], configuration: ControllerConfiguration) {
        self.hosts = hosts
        self.configuration = configuration
    }

    /// A view over the shared connections; nil for hosts they do not cover.
    func client(for wanted: [Fleet.Host], retry: RetryPolicy) throws(ControllerError) -> HTTPAgentClient? {
        guard wanted.allSatisfy({ hosts.contains($0) }) else { return nil }
        let owner: HTTPAgentClient = try made.withLock { made throws(ControllerError) in
            if let made { return made }
            let client = try configuration.agentClient(for: hosts)
            made = client
            return client
        }
        return owner.sharingConnections(for: wanted, retry: retry)
    }

    func shutdown() async {
        await made.withLock { $0 }?.shutdown()
    }
}
