import BatonProtocol

extension AgentClient {
    /// `appStatus` as a Result, for task groups. Swift 6.3.1 miscompiles, at -O, a
    /// `do throws(AgentCallError) { ... } catch { ... }` written directly inside an
    /// `addTask` closure that returns a tuple holding a `Result<_, AgentCallError>`: the
    /// group reads a corrupt value and the release `baton` crashes or hangs (debug builds,
    /// and so the tests, are fine). Keep typed `do/catch` in named functions like this one,
    /// never in task-group closures.
    public func appStatusResult(_ host: Fleet.Host, app: String) async -> Result<AppStatus?, AgentCallError> {
        do throws(AgentCallError) { return .success(try await appStatus(host, app: app)) } catch { return .failure(error) }
    }
}
