import BatonProtocol

/// `baton logs`: one deployment's record (events and hook output) from its host's agent.
public enum DeploymentLog {
    /// The record of `deployment`, or of the app's last deployment on the host when nil;
    /// nil when the host has no such deployment.
    public static func record(
        client: any AgentClient, host: Fleet.Host, app: String, deployment: String?
    ) async throws(AgentCallError) -> DeploymentRecord? {
        var id = deployment
        if id == nil { id = try await client.appStatus(host, app: app)?.lastDeploymentID }
        guard let id else { return nil }
        return try await client.record(host, deploymentID: id)
    }
}
