/// The agent's version, reported by `GET /v1/health` and `batond --version`.
public enum AgentVersion {
    public static let current = "0.1.0"
}
