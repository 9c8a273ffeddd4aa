import NIOHTTP1

/// The agent API's routes (Protocol/PROTOCOL.md §10), from a request's method and path.
enum AgentRoute: Equatable {
    case health
    case apps
    case app(String)
    case hasArtifact(String)
    case putArtifact(String)
    case submit
    case record(String)
    case events(String)
    case receipt(String)
    case auditHead

    init?(method: HTTPMethod, path: String) {
        let s = path.split(separator: "/").map(String.init)
        guard s.first == "v1" else { return nil }
        switch (method, s.count) {
        case (.GET, 2) where s[1] == "health": self = .health
        case (.GET, 2) where s[1] == "apps": self = .apps
        case (.GET, 3) where s[1] == "apps": self = .app(s[2])
        case (.HEAD, 4) where s[1] == "artifacts" && s[2] == "sha256": self = .hasArtifact(s[3])
        case (.PUT, 4) where s[1] == "artifacts" && s[2] == "sha256": self = .putArtifact(s[3])
        case (.POST, 2) where s[1] == "deployments": self = .submit
        case (.GET, 3) where s[1] == "deployments": self = .record(s[2])
        case (.GET, 4) where s[1] == "deployments" && s[3] == "events": self = .events(s[2])
        case (.GET, 4) where s[1] == "deployments" && s[3] == "receipt": self = .receipt(s[2])
        case (.GET, 3) where s[1] == "audit" && s[2] == "head": self = .auditHead
        default: return nil
        }
    }
}
