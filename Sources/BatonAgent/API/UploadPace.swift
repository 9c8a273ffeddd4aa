import Synchronization

/// The pace an artifact upload must keep: in every window at least the minimum rate's
/// worth of bytes (or all that is left), and all of it within a deadline derived from its
/// size (`size / minimum rate`, plus one window). Two clients trickling a byte every few
/// seconds would otherwise hold every upload slot for as long as they like.
final class UploadPace: Sendable {
    enum Verdict: Sendable { case onPace, tooSlow }

    let size: UInt64
    let minimumBytesPerSecond: UInt64
    let window: Duration
    let deadline: Duration
    private let clock = ContinuousClock()
    private let start: ContinuousClock.Instant
    private let state = Mutex<(received: UInt64, atWindowStart: UInt64, dropped: String?)>((0, 0, nil))

    init(size: UInt64, minimumBytesPerSecond: UInt64, window: Duration) {
        self.size = size
        self.minimumBytesPerSecond = max(1, minimumBytesPerSecond)
        self.window = window
        deadline = .seconds(Double(size) / Double(self.minimumBytesPerSecond)) + window
        start = clock.now
    }

    /// Bytes received so far.
    func received(_ bytes: UInt64) { state.withLock { $0.received = bytes } }

    /// Why the upload was dropped, once it was.
    var dropped: String? { state.withLock { $0.dropped } }

    /// Waits one window and judges it; nil once the upload is complete or the wait was
    /// cancelled (the request ended).
    func nextVerdict() async -> Verdict? {
        do { try await Task.sleep(for: window, clock: clock) } catch { return nil }
        let windowSeconds = Double(window.components.seconds) + Double(window.components.attoseconds) / 1e18
        let elapsed = clock.now - start
        return state.withLock { state -> Verdict? in
            guard state.received < size else { return nil }
            let wanted = min(UInt64(Double(minimumBytesPerSecond) * windowSeconds), size - state.atWindowStart)
            let got = state.received - state.atWindowStart
            if got < wanted {
                state.dropped = "\(got) bytes arrived in the last \(window), under the minimum of \(minimumBytesPerSecond) bytes per second"
                return .tooSlow
            }
            if elapsed > deadline {
                state.dropped = "it did not finish within \(deadline) (its size at \(minimumBytesPerSecond) bytes per second, plus \(window))"
                return .tooSlow
            }
            state.atWindowStart = state.received
            return .onPace
        }
    }
}
