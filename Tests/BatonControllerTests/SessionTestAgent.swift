import BatonController
import BatonPKI
import BatonProtocol
import Foundation
import Synchronization

/// An in-memory fleet for the rollout session's tests: every deployment is accepted and
/// succeeds at once, except that of `held`, which waits (after announcing itself on
/// `reached`) until `proceed()`. Counts shutdowns, so a test can see the session let the
/// client go.
final class SessionTestAgent: AgentClient {
    let held: String?
    /// Yields the held host's id once its deployment is under way.
    let reached: AsyncStream<String>
    private let reachedSink: AsyncStream<String>.Continuation
    private let gate: AsyncStream<Void>
    private let gateSink: AsyncStream<Void>.Continuation
    private let state = Mutex(State())

    private struct State {
        var shutdowns = 0
        var submitted: [String] = []
    }

    init(held: String? = nil) {
        self.held = held
        (reached, reachedSink) = AsyncStream.makeStream()
        (gate, gateSink) = AsyncStream.makeStream()
    }

    var shutdowns: Int { state.withLock { $0.shutdowns } }
    /// The hosts that were sent an envelope, in order.
    var submitted: [String] { state.withLock { $0.submitted } }

    /// Lets the held host's deployment finish.
    func proceed() { gateSink.yield() }

    func appStatus(_ host: Fleet.Host, app: String) async throws(AgentCallError) -> AppStatus? {
        AppStatus(app: app, current: "v1", lastSerial: 1)
    }

    func submit(_ host: Fleet.Host, envelope: [UInt8]) async throws(AgentCallError) -> DeploymentAccepted {
        state.withLock { $0.submitted.append(host.id) }
        return DeploymentAccepted(id: "d-\(host.id)", phase: .accepted, existing: false)
    }

    func follow(
        _ host: Fleet.Host, deploymentID: String, onEvent: @Sendable (DeploymentEvent) async -> Void
    ) async throws(AgentCallError) -> DeploymentRecord {
        if host.id == held {
            reachedSink.yield(host.id)
            for await _ in gate { break }
        }
        return try await record(host, deploymentID: deploymentID)
    }

    func record(_ host: Fleet.Host, deploymentID: String) async throws(AgentCallError) -> DeploymentRecord {
        DeploymentRecord(
            id: deploymentID, hostID: host.id, app: "web", release: "v2", serial: 2, environment: host.environment,
            payloadDigest: "", artifactSHA256: "", signers: [], isRollback: false, previousRelease: "v1", phase: .succeeded,
            createdAt: Date())
    }

    func apps(_ host: Fleet.Host) async throws(AgentCallError) -> [AppStatus] { [] }

    func hasArtifact(_ host: Fleet.Host, sha256: String) async throws(AgentCallError) -> Bool { true }

    func uploadArtifact(_ host: Fleet.Host, file: String, sha256: String, size: UInt64) async throws(AgentCallError) -> Bool { false }

    // A rollout never asks for these; answering as an agent that refuses keeps the fake honest.
    func health(_ host: Fleet.Host) async throws(AgentCallError) -> AgentHealth {
        throw AgentCallError(.refused, status: 404, code: "not_in_fake", message: "the session's fake agent has no health")
    }

    func auditHead(_ host: Fleet.Host, line: Int?) async throws(AgentCallError) -> SignedAuditHead {
        throw AgentCallError(.refused, status: 404, code: "not_in_fake", message: "the session's fake agent has no audit log")
    }

    func certificate(of host: Fleet.Host) -> PeerCertificate? { nil }

    func shutdown() async { state.withLock { $0.shutdowns += 1 } }
}
