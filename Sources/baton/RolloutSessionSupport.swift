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
        var session = RolloutSession(
            history: try history(), state: state, makeClient: agentClients, progress: output.renderer(hosts: request.hosts.map(\.id)),
            notify: { Output.error($0) })
        session.lockWait = lockWait
        do { return try await session.run(request, signers: signers, mode: mode).exitStatus } catch { throw error.cli }
    }
}
