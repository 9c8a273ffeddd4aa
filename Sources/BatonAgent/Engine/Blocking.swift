import Dispatch

/// Runs blocking work (extraction, copying, fsync) off Swift's cooperative thread pool,
/// which has only as many threads as cores: a long syscall there would stall the API.
enum Blocking {
    static func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try work() })
            }
        }
    }
}
