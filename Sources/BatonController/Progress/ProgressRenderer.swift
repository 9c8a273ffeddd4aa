import BatonProtocol
import Foundation
import Synchronization

/// Shows a rollout as it happens. The CLI picks one: a live table on a terminal, one
/// line per event otherwise, NDJSON with `--json`. Renderers produce text and hand it to
/// `write`; they never decide where it goes.
public protocol ProgressRenderer: Sendable {
    func handle(_ event: RolloutEvent)
    func finish(_ summary: RolloutSummary)
}

/// ANSI colours, only on a terminal and only without `NO_COLOR` (no-color.org).
public struct Palette: Sendable {
    public var enabled: Bool

    public init(enabled: Bool) { self.enabled = enabled }

    public static func forTerminal(isTTY: Bool, environment: [String: String] = ProcessInfo.processInfo.environment) -> Palette {
        let noColor = environment["NO_COLOR"].map { !$0.isEmpty } ?? false
        return Palette(enabled: isTTY && !noColor && environment["TERM"] != "dumb")
    }

    func paint(_ text: String, _ phase: HostPhase?) -> String {
        guard enabled, let phase else { return text }
        let code: String
        switch phase {
        case .succeeded, .reverted: code = "32"
        case .failed, .rollbackFailed, .revertFailed, .unreachable: code = "31"
        case .rolledBack, .reverting, .skipped: code = "33"
        case .pending: code = "2"
        default: code = "36"
        }
        return "\u{1B}[\(code)m\(text)\u{1B}[0m"
    }

    func bold(_ text: String) -> String { enabled ? "\u{1B}[1m\(text)\u{1B}[0m" : text }
}

enum Clock {
    static func time(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = .current
        let c = calendar.dateComponents([.hour, .minute, .second], from: date)
        return String(format: "%02d:%02d:%02d", c.hour!, c.minute!, c.second!)
    }

    static func elapsed(_ seconds: TimeInterval) -> String {
        let s = max(0, Int(seconds))
        return s < 60 ? "\(s)s" : "\(s / 60)m\(String(format: "%02d", s % 60))s"
    }
}

/// One line per event: for logs and CI, where nothing is redrawn. `brief`: one line per
/// host per phase change (and every error), for a reader rather than a log.
public final class LineRenderer: ProgressRenderer {
    let write: @Sendable (String) -> Void
    let palette: Palette
    let brief: Bool
    private let lastPhase = Mutex<[String: HostPhase]>([:])

    public init(palette: Palette = Palette(enabled: false), brief: Bool = false, write: @escaping @Sendable (String) -> Void) {
        self.palette = palette
        self.brief = brief
        self.write = write
    }

    public func handle(_ event: RolloutEvent) {
        if brief, let host = event.host, let phase = event.phase, event.error == nil {
            let changed = lastPhase.withLock { last in
                defer { last[host] = phase }
                return last[host] != phase
            }
            guard changed else { return }
        }
        write(Self.line(event, palette: palette) + "\n")
    }

    static func line(_ event: RolloutEvent, palette: Palette) -> String {
        let time = Clock.time(event.time)
        if let host = event.host, let phase = event.phase {
            let wave = event.wave.map { " [\($0)]" } ?? ""
            let error = event.error.map { " (\($0.code))" } ?? ""
            return "\(time) \(host)\(wave) \(palette.paint(phase.rawValue, phase)): \(event.message)\(error)"
        }
        return "\(time) \(palette.bold(event.message))"
    }

    public func finish(_ summary: RolloutSummary) {
        write(SummaryText.render(summary, palette: palette))
    }
}

/// Newline-delimited JSON: every event, then the summary object (`"type": "summary"`).
public final class JSONRenderer: ProgressRenderer {
    let write: @Sendable (String) -> Void

    public init(write: @escaping @Sendable (String) -> Void) { self.write = write }

    public func handle(_ event: RolloutEvent) {
        if let data = try? BatonJSON.encode(event) { write(String(decoding: data, as: UTF8.self) + "\n") }
    }

    public func finish(_ summary: RolloutSummary) {
        if let data = try? BatonJSON.encode(summary) { write(String(decoding: data, as: UTF8.self) + "\n") }
    }
}

/// A table of hosts (host, phase, elapsed, last message) and an overall line, redrawn in
/// place on a terminal; rollout-level events scroll above it.
public final class TableRenderer: ProgressRenderer {
    struct Row {
        var host: String
        var phase: HostPhase = .pending
        var wave: String?
        var startedAt: Date?
        var endedAt: Date?
        var message = ""
    }

    struct State {
        var rows: [Row] = []
        var drawnLines = 0
        var headline = ""
        var startedAt = Date()
    }

    let write: @Sendable (String) -> Void
    let palette: Palette
    let width: Int
    let state = Mutex(State())

    public init(hosts: [String], palette: Palette, width: Int = 120, write: @escaping @Sendable (String) -> Void) {
        self.write = write
        self.palette = palette
        self.width = max(60, width)
        state.withLock { $0.rows = hosts.map { Row(host: $0) } }
    }

    public func handle(_ event: RolloutEvent) {
        let output = state.withLock { state -> String in
            var text = Self.clear(state.drawnLines)
            if event.type == .started {
                state.startedAt = event.time
                state.headline = event.message
            }
            if let host = event.host, let phase = event.phase, let index = state.rows.firstIndex(where: { $0.host == host }) {
                var row = state.rows[index]
                if row.startedAt == nil, phase != .pending, phase != .querying { row.startedAt = event.time }
                row.phase = phase
                row.wave = event.wave ?? row.wave
                row.message = event.message
                row.endedAt = phase.isFinal ? event.time : nil
                state.rows[index] = row
            } else {
                text += LineRenderer.line(event, palette: palette) + "\n"
            }
            let (table, lines) = render(state, now: event.time)
            state.drawnLines = lines
            return text + table
        }
        write(output)
    }

    public func finish(_ summary: RolloutSummary) {
        write(SummaryText.render(summary, palette: palette))
    }

    /// Moves up over the table drawn last time and clears it.
    static func clear(_ lines: Int) -> String {
        guard lines > 0 else { return "" }
        return "\u{1B}[\(lines)F\u{1B}[J"
    }

    func render(_ state: State, now: Date) -> (String, Int) {
        let hostWidth = max(4, state.rows.map(\.host.count).max() ?? 4)
        var lines: [String] = []
        lines.append(palette.bold(pad("HOST", hostWidth) + "  " + pad("PHASE", 15) + "  " + pad("ELAPSED", 7) + "  MESSAGE"))
        for row in state.rows {
            let elapsed = row.startedAt.map { Clock.elapsed((row.endedAt ?? now).timeIntervalSince($0)) } ?? ""
            let fixed = hostWidth + 2 + 15 + 2 + 7 + 2
            let message = String(row.message.prefix(max(10, width - fixed - 1)))
            lines.append(
                pad(row.host, hostWidth) + "  " + palette.paint(pad(row.phase.rawValue, 15), row.phase) + "  "
                    + pad(elapsed, 7) + "  " + message)
        }
        let counts = Dictionary(grouping: state.rows, by: \.phase).mapValues(\.count)
        let done = state.rows.filter { $0.phase.isFinal }.count
        let parts = [HostPhase.succeeded, .failed, .rolledBack, .unreachable, .reverted, .revertFailed, .skipped]
            .compactMap { phase in counts[phase].map { "\($0) \(phase.rawValue)" } }
        lines.append(palette.bold("\(done)/\(state.rows.count) done\(parts.isEmpty ? "" : ": " + parts.joined(separator: ", ")) · \(Clock.elapsed(now.timeIntervalSince(state.startedAt)))"))
        return (lines.map { $0 + "\n" }.joined(), lines.count)
    }

    func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }
}

/// The end-of-rollout summary as people read it.
public enum SummaryText {
    public static func render(_ summary: RolloutSummary, palette: Palette = Palette(enabled: false)) -> String {
        var lines: [String] = []
        let outcome: String
        switch summary.outcome {
        case .succeeded: outcome = "succeeded"
        case .failed: outcome = summary.reverted.isEmpty ? "failed" : "failed and was reverted"
        case .needsAttention: outcome = "halted: hosts need attention"
        case .paused: outcome = "paused after the canary"
        case .aborted: outcome = "aborted"
        case .abandoned: outcome = "abandoned: it lost its lock"
        }
        lines.append(palette.bold("rollout \(summary.rolloutID): \(summary.app) \(summary.release) to \(summary.environment) \(outcome) (exit \(summary.exitStatus))"))
        if let reason = summary.haltReason { lines.append("  halted: \(reason)") }
        if !summary.succeeded.isEmpty { lines.append("  succeeded (\(summary.succeeded.count)): \(summary.succeeded.joined(separator: ", "))") }
        if !summary.failed.isEmpty {
            lines.append("  failed (\(summary.failed.count)):")
            for host in summary.failed {
                lines.append("    \(host.host): \(host.phase.rawValue)\(host.error.map { ": \($0.code): \($0.message)" } ?? "")")
            }
        }
        if !summary.reverted.isEmpty { lines.append("  reverted (\(summary.reverted.count)): \(summary.reverted.joined(separator: ", "))") }
        if !summary.unreachable.isEmpty {
            lines.append("  unreachable (\(summary.unreachable.count)):")
            for host in summary.hosts where host.phase == .unreachable {
                lines.append("    \(host.host)\(host.error.map { ": \($0.code): \($0.message)" } ?? "")")
            }
        }
        if !summary.skipped.isEmpty { lines.append("  not deployed (\(summary.skipped.count)): \(summary.skipped.joined(separator: ", "))") }
        let attention = summary.hosts.filter { $0.needsAttention && $0.phase != .unreachable && ![.rollbackFailed, .revertFailed].contains($0.phase) }
        for host in attention {
            lines.append("  attention: \(host.host)\(host.error.map { ": \($0.code): \($0.message)" } ?? "")")
        }
        if summary.outcome == .paused {
            lines.append("  next: baton rollout resume \(summary.rolloutID)   (or: baton rollout abort \(summary.rolloutID))")
        }
        return lines.map { $0 + "\n" }.joined()
    }
}
