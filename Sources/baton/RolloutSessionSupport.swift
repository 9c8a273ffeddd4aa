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
        do { return try await session.run(request, signers: signers, mode: mode).exitStatus } catch { throw error.command }
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
