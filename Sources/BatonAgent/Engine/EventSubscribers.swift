import BatonProtocol
import Synchronization

/// The event streams open on running deployments. A lock, not the engine's actor: a
/// stream that ends (its reader went away) is forgotten at once, from whatever task ends
/// it, without a hop through a new task that nobody owns.
final class EventSubscribers: Sendable {
    private struct Subscriber: Sendable {
        let continuation: AsyncStream<DeploymentEvent>.Continuation
        /// How many of the deployment's events the stream already holds.
        var delivered: Int
    }

    private let state = Mutex<(next: Int, streams: [String: [Int: Subscriber]])>((0, [:]))

    /// Follows deployment `id` with a stream that already holds its first `delivered` events.
    func add(_ id: String, _ continuation: AsyncStream<DeploymentEvent>.Continuation, delivered: Int) {
        let key = state.withLock { state in
            state.next += 1
            state.streams[id, default: [:]][state.next] = Subscriber(continuation: continuation, delivered: delivered)
            return state.next
        }
        continuation.onTermination = { [weak self] _ in self?.remove(id, key) }
    }

    private func remove(_ id: String, _ key: Int) {
        state.withLock { state in
            state.streams[id]?[key] = nil
            if state.streams[id]?.isEmpty == true { state.streams[id] = nil }
        }
    }

    /// Gives every stream of `id` the events of `events` it does not hold yet, and ends
    /// them all when `end`. Yields happen outside the lock: finishing a stream runs its
    /// `onTermination`, which takes the lock.
    func publish(_ id: String, events: [DeploymentEvent], end: Bool) {
        let due: [(AsyncStream<DeploymentEvent>.Continuation, ArraySlice<DeploymentEvent>)] = state.withLock { state in
            guard var streams = state.streams[id] else { return [] }
            var due: [(AsyncStream<DeploymentEvent>.Continuation, ArraySlice<DeploymentEvent>)] = []
            for (key, subscriber) in streams {
                due.append((subscriber.continuation, events.dropFirst(subscriber.delivered)))
                streams[key]?.delivered = max(subscriber.delivered, events.count)
            }
            state.streams[id] = end ? nil : streams
            return due
        }
        for (continuation, fresh) in due {
            for event in fresh { continuation.yield(event) }
            if end { continuation.finish() }
        }
    }

    var count: Int { state.withLock { $0.streams.values.reduce(0) { $0 + $1.count } } }
}
