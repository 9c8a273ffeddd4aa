import Synchronization

/// A clock on which nothing waits: a sleeper is woken at once with the clock moved to
/// its deadline, as if exactly that much time had passed. Code measured on it keeps its
/// schedule to the nanosecond (every attempt at its exact instant) and runs as fast as
/// its work allows; each sleep is recorded so tests can check the schedule.
final class VirtualClock: Clock, Sendable {
    struct Instant: InstantProtocol, CustomStringConvertible {
        /// Time since the clock was made.
        var offset: Duration

        func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
        func duration(to other: Instant) -> Duration { other.offset - offset }
        static func < (a: Instant, b: Instant) -> Bool { a.offset < b.offset }
        var description: String { "\(offset)" }
    }

    private let state = Mutex<(now: Instant, sleeps: [Instant])>((Instant(offset: .zero), []))

    var now: Instant { state.withLock { $0.now } }
    var minimumResolution: Duration { .zero }

    /// How much virtual time has passed.
    var elapsed: Duration { now.offset }

    /// The deadline of every sleep so far, in order.
    var sleeps: [Instant] { state.withLock { $0.sleeps } }

    func sleep(until deadline: Instant, tolerance: Duration?) async throws {
        try Task.checkCancellation()
        state.withLock { state in
            state.sleeps.append(deadline)
            if state.now < deadline { state.now = deadline }
        }
        // Still a suspension point, as a real sleep is.
        await Task.yield()
        try Task.checkCancellation()
    }
}
