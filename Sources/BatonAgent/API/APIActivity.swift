import Hummingbird
import Synchronization

/// Counts the API calls begun and ended, so that something can tell whether the agent has
/// been idle between two moments: the count is the same at both ends and no call is in
/// progress. A call whose response streams on after its handler returned (a deployment's
/// events) counts as ended once the handler returned; the deployment itself is the
/// engine's to report (`DeploymentEngine.hasWork`).
public final class APIActivity: Sendable {
    private let marks = Atomic<UInt64>(0)
    private let inProgress = Atomic<Int>(0)

    public init() {}

    /// Changes with every call begun or ended.
    public var generation: UInt64 { marks.load(ordering: .acquiring) }
    /// Calls whose handler has not returned yet.
    public var callsInProgress: Int { inProgress.load(ordering: .acquiring) }

    func begin() {
        inProgress.add(1, ordering: .relaxed)
        marks.add(1, ordering: .releasing)
    }

    func end() {
        inProgress.subtract(1, ordering: .relaxed)
        marks.add(1, ordering: .releasing)
    }
}

/// Marks every API call in an `APIActivity`.
struct APIActivityMiddleware: RouterMiddleware {
    typealias Context = AgentRequestContext
    let activity: APIActivity

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        activity.begin()
        defer { activity.end() }
        return try await next(request, context)
    }
}
