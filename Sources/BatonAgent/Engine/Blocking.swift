import Dispatch
import NIOPosix

/// Runs blocking work off Swift's cooperative thread pool, which has only as many
/// threads as cores: a long syscall there would stall the API and every other
/// deployment.
enum Blocking {
    /// Bulk work that can take seconds or minutes (extraction, copying and hashing an
    /// artifact) goes to Dispatch's global queue, which adds threads when its threads
    /// block: on NIO's small pool it would hold up every record write behind it.
    static func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try work() })
            }
        }
    }

    /// The agent's own short file operations (fsync, rename, a durable rewrite, an
    /// append) run on NIO's blocking thread pool (sized by
    /// `AgentService.limitEventLoopThreads`). They fail only with `AgentError`.
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
