import BatonPKI
import BatonProtocol

/// What the controller asks of agents (Protocol/PROTOCOL.md §10), one host at a time.
///
/// ``HTTPAgentClient`` is the real one (mutual TLS to real agents); the rollout state
/// machine's and the fan-out's unit tests use an in-memory fake beside it, while the
/// end-to-end tests keep running real agents.
public protocol AgentClient: Sendable {
    func apps(_ host: Fleet.Host) async throws(AgentCallError) -> [AppStatus]
    func health(_ host: Fleet.Host) async throws(AgentCallError) -> AgentHealth
    /// The agent's signed audit head; with `line`, also the hash of that line of its chain.
    func auditHead(_ host: Fleet.Host, line: Int?) async throws(AgentCallError) -> SignedAuditHead
    /// The app's state on the host, or nil when the host never saw the app.
    func appStatus(_ host: Fleet.Host, app: String) async throws(AgentCallError) -> AppStatus?
    func hasArtifact(_ host: Fleet.Host, sha256: String) async throws(AgentCallError) -> Bool
    /// Sends the file unless the agent holds the artifact already; true when bytes were sent.
    @discardableResult
    func uploadArtifact(_ host: Fleet.Host, file: String, sha256: String, size: UInt64) async throws(AgentCallError) -> Bool
    /// Posts an envelope; an identical resend answers with the existing deployment.
    func submit(_ host: Fleet.Host, envelope: [UInt8]) async throws(AgentCallError) -> DeploymentAccepted
    func record(_ host: Fleet.Host, deploymentID: String) async throws(AgentCallError) -> DeploymentRecord
    /// Follows a deployment's events to its terminal phase, handing each new one to
    /// `onEvent` once, in order; returns the final record.
    func follow(
        _ host: Fleet.Host, deploymentID: String, onEvent: @Sendable (DeploymentEvent) async -> Void
    ) async throws(AgentCallError) -> DeploymentRecord
    /// The certificate `host`'s agent presented on the last new connection, if known.
    func certificate(of host: Fleet.Host) -> PeerCertificate?
    /// Closes every connection; the client is unusable afterwards.
    func shutdown() async
}
