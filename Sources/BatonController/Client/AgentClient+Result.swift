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

    /// `uploadArtifact` as a value, so a caller can release what it holds (an upload
    /// slot) before looking at the outcome.
    public func uploadArtifactResult(_ host: Fleet.Host, file: String, sha256: String, size: UInt64) async -> Result<Bool, AgentCallError> {
        do throws(AgentCallError) {
            return .success(try await uploadArtifact(host, file: file, sha256: sha256, size: size))
        } catch {
            return .failure(error)
        }
    }
}
