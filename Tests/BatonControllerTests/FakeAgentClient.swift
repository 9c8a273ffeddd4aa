@testable import BatonController
import BatonPKI
import BatonProtocol
import Foundation

/// Agents in memory, for the rollout runner's tests: each host answers with its `status`,
/// runs every deployment at once to the phase set for it, and remembers what it was sent.
actor FakeAgentClient: AgentClient {
    struct Deployment {
        var host: String
        var envelope: [UInt8]
        var phase: DeploymentPhase
    }

    var statuses: [String: AppStatus]
    /// Hosts that never answer.
    var unreachable: Set<String>
    /// The phase each host's deployment of `rolloutEnvelope` ends in; `succeeded` when
    /// absent. Any other envelope (a revert) succeeds.
    var outcomes: [String: DeploymentPhase]
    let rolloutEnvelope: [UInt8]
    private(set) var deployments: [String: Deployment] = [:]
    /// Every envelope posted, in order.
    private(set) var submitted: [(host: String, envelope: [UInt8])] = []

    init(rolloutEnvelope: [UInt8], statuses: [String: AppStatus], outcomes: [String: DeploymentPhase] = [:],
         unreachable: Set<String> = []) {
        self.rolloutEnvelope = rolloutEnvelope
        self.statuses = statuses
        self.outcomes = outcomes
        self.unreachable = unreachable
    }

    /// The envelopes other than the rollout's (the reverts), by host.
    var reverts: [String: [UInt8]] {
        Dictionary(submitted.filter { $0.envelope != rolloutEnvelope }.map { ($0.host, $0.envelope) },
                   uniquingKeysWith: { _, last in last })
    }

    func answer(_ host: Fleet.Host) throws(AgentCallError) {
        if unreachable.contains(host.id) {
            throw AgentCallError(.unreachable, code: "agent_unreachable", message: "\(host.id) did not answer")
        }
    }

    func apps(_ host: Fleet.Host) throws(AgentCallError) -> [AppStatus] {
        try answer(host)
        return statuses[host.id].map { [$0] } ?? []
    }

    func health(_ host: Fleet.Host) throws(AgentCallError) -> AgentHealth {
        throw AgentCallError(.refused, status: 404, code: "not_faked", message: "the fake agent has no health report")
    }

    func auditHead(_ host: Fleet.Host, line: Int?) throws(AgentCallError) -> SignedAuditHead {
        throw AgentCallError(.refused, status: 404, code: "not_faked", message: "the fake agent keeps no audit log")
    }

    func appStatus(_ host: Fleet.Host, app: String) throws(AgentCallError) -> AppStatus? {
        try answer(host)
        return statuses[host.id]
    }

    func hasArtifact(_ host: Fleet.Host, sha256: String) throws(AgentCallError) -> Bool {
        try answer(host)
        return false
    }

    func uploadArtifact(_ host: Fleet.Host, file: String, sha256: String, size: UInt64) throws(AgentCallError) -> Bool {
        try answer(host)
        return true
    }

    func submit(_ host: Fleet.Host, envelope: [UInt8]) throws(AgentCallError) -> DeploymentAccepted {
        try answer(host)
        submitted.append((host.id, envelope))
        let id = "\(host.id)-\(submitted.count)"
        let phase = envelope == rolloutEnvelope ? outcomes[host.id] ?? .succeeded : .succeeded
        deployments[id] = Deployment(host: host.id, envelope: envelope, phase: phase)
        return DeploymentAccepted(id: id, phase: .accepted, existing: false)
    }

    func record(_ host: Fleet.Host, deploymentID: String) throws(AgentCallError) -> DeploymentRecord {
        try answer(host)
        guard let deployment = deployments[deploymentID], deployment.host == host.id else {
            throw AgentCallError(.refused, status: 404, code: "deployment_not_found", message: "no deployment \(deploymentID)")
        }
        var record = DeploymentRecord(
            id: deploymentID, hostID: host.id, app: RolloutFixture.app, release: "", serial: 0, environment: "staging",
            payloadDigest: "", artifactSHA256: "", signers: [], isRollback: false, previousRelease: nil,
            phase: deployment.phase, createdAt: Date())
        if deployment.phase != .succeeded {
            record.error = ErrorInfo(code: "health_check_failed", message: "\(host.id) is not healthy")
        }
        return record
    }

    func follow(
        _ host: Fleet.Host, deploymentID: String, onEvent: @Sendable (DeploymentEvent) async -> Void
    ) async throws(AgentCallError) -> DeploymentRecord {
        let record = try record(host, deploymentID: deploymentID)
        await onEvent(DeploymentEvent(
            sequence: 1, time: Date(), deploymentID: deploymentID, app: RolloutFixture.app, release: "",
            phase: .checking, message: "checking health"))
        return record
    }

    nonisolated func certificate(of host: Fleet.Host) -> PeerCertificate? { nil }

    func shutdown() {}
}
