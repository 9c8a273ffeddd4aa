import NIOPosix

/// Runs blocking work (extraction, copying, fsync, rename) on NIO's blocking thread pool
/// (sized by `AgentService.limitEventLoopThreads`), off Swift's cooperative pool: that
/// one has only as many threads as cores, and a long syscall there would stall the API
/// and every other deployment.
enum Blocking {
    static func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await NIOThreadPool.singleton.runIfActive(work)
    }

    /// `run` for the agent's own file operations, which fail only with `AgentError`.
    static func files<T: Sendable>(_ work: @escaping @Sendable () throws(AgentError) -> T) async throws(AgentError) -> T {
        do {
            return try await NIOThreadPool.singleton.runIfActive { () throws -> T in try work() }
        } catch let error as AgentError {
            throw error
        } catch {
            throw AgentError(.ioError, "the blocking thread pool is not running: \(error)")
        }
    }
}
