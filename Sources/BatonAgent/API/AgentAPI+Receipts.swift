import BatonProtocol
import Hummingbird

extension AgentAPI {
    /// `GET /v1/deployments/{id}/receipt`: the deployment's signed receipt
    /// (Protocol/PROTOCOL.md §10.10). 404 for an unknown deployment, one still running, or
    /// when this agent has no P-256 key to sign with.
    func getReceipt(_ context: AgentRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        guard let record = try await engine.readRecord(id) else { throw Self.noDeployment(id) }
        guard record.phase.isTerminal, let receipt = await engine.receipt(id) else {
            throw RequestError(
                .notFound,
                record.phase.isTerminal
                    ? "deployment '\(id)' has no receipt: this agent cannot sign one (its TLS key is not an ECDSA P-256 key)"
                    : "deployment '\(id)' is still running (\(record.phase.rawValue)); its receipt is signed when it ends")
        }
        return try APIResponse.json(receipt)
    }
}
