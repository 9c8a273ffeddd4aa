/// Elapsed time on the monotonic clock, which wall-clock changes do not disturb.
struct Stopwatch: Sendable {
    let clock = ContinuousClock()
    let start: ContinuousClock.Instant

    init() { start = clock.now }

    var elapsed: Duration { clock.now - start }

    var elapsedMilliseconds: Int { Self.milliseconds(elapsed) }

    static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return Int(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000)
    }

    /// Sleeps even when the current task is cancelled (`Task.sleep` would return at
    /// once and turn a polling loop into a busy one). Only for short pauses.
    static func pause(_ duration: Duration) async {
        await Task { try? await Task.sleep(for: duration) }.value
    }
}
