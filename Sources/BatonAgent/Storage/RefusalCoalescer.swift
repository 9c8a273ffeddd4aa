#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Decides which refusals the audit log records in full. The first refusal of a code from
/// a peer in an interval is written as it is; the rest of that interval are only counted,
/// and the count is written as one `refusals` line when the interval is over (at the next
/// audit entry, or when the agent stops). Every refusal stays accounted for, but a client
/// sending bad requests in a loop adds a line per interval, not a line (and an fsync) per
/// request.
struct RefusalCoalescer: Sendable {
    struct Key: Hashable, Sendable {
        let code: String
        let peer: String
    }

    struct Window: Sendable {
        let start: Date
        var suppressed: Int
        var app: String?
        var lastMessage: String
    }

    let interval: TimeInterval
    private(set) var windows: [Key: Window] = [:]

    init(interval: TimeInterval) { self.interval = interval }

    /// True when this refusal opens a new window and must be written in full; false when
    /// it was counted into the open one.
    mutating func admit(code: String, peer: String, app: String?, message: String, at time: Date) -> Bool {
        let key = Key(code: code, peer: peer)
        if var window = windows[key], time.timeIntervalSince(window.start) < interval {
            window.suppressed += 1
            window.app = window.app ?? app
            window.lastMessage = message
            windows[key] = window
            return false
        }
        windows[key] = Window(start: time, suppressed: 0, app: app, lastMessage: message)
        return true
    }

    /// The counts to write: windows whose interval ended by `time` (all of them when
    /// `everything`), removed from the coalescer. Only windows that counted something.
    mutating func due(at time: Date, everything: Bool = false) -> [(key: Key, window: Window)] {
        let ended = windows.filter { everything || time.timeIntervalSince($0.value.start) >= interval }
        for key in ended.keys { windows.removeValue(forKey: key) }
        return ended.filter { $0.value.suppressed > 0 }
            .map { (key: $0.key, window: $0.value) }
            .sorted { ($0.window.start, $0.key.code, $0.key.peer) < ($1.window.start, $1.key.code, $1.key.peer) }
    }
}
