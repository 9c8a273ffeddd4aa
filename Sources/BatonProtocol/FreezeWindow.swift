#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One change freeze of an environment: a one-off period between two instants, or a
/// weekly window (some days, a time of day to a time of day, in UTC, at a fixed UTC
/// offset, or in a named zone).
///
/// Boundaries: a window starts at `from` (inclusive) and ends at `until` (exclusive), so
/// `until: "2026-12-27T00:00:00Z"` lets a change through at midnight exactly.
///
/// A named zone (`Europe/Berlin`) is read from the system's time zone database when the
/// trust policy is loaded (`TimeZoneFile`: FoundationEssentials has none of its own), and
/// a weekly window in it is evaluated at "now" with the zone's UTC offset at that
/// instant, so `09:00-10:00 Europe/Berlin` is 08:00Z in winter and 07:00Z in summer. The
/// end of an occurrence is converted with the offset in force at that end.
public struct FreezeWindow: Sendable, Equatable {
    public enum Schedule: Sendable, Equatable {
        case once(from: Date, until: Date)
        /// `days` are the days a window starts on (at `from`, local time); a window whose
        /// `until` is not after `from` ends on the next day. Minutes since local midnight;
        /// `until` may be 1440 (24:00).
        case weekly(days: Set<Weekday>, from: Int, until: Int, zone: Zone)
    }

    /// Where a weekly window's days and times are read.
    public enum Zone: Sendable, Equatable {
        /// Seconds east of UTC (0: UTC).
        case offset(Int)
        case named(TimeZoneFile)

        /// The UTC offset at `instant`, in seconds.
        public func offset(at instant: Date) -> Int {
            switch self {
            case .offset(let seconds): seconds
            case .named(let zone): zone.offset(at: instant)
            }
        }

        /// `UTC`, `+01:00`, `Europe/Berlin`.
        public var text: String {
            switch self {
            case .offset(let seconds): FreezeWindow.offsetText(seconds)
            case .named(let zone): zone.name
            }
        }
    }

    public enum Weekday: String, Sendable, CaseIterable, Comparable {
        case mon, tue, wed, thu, fri, sat, sun

        /// Day 0 of the Unix epoch (1970-01-01) was a Thursday.
        static func of(day: Int64) -> Weekday {
            let index = Int(((day % 7) + 7 + 3) % 7)  // 0 = Monday
            return allCases[index]
        }

        public static func < (a: Weekday, b: Weekday) -> Bool {
            allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
        }
    }

    public var schedule: Schedule
    /// Why changes are frozen, for the people whose deploy is refused.
    public var reason: String

    public init(schedule: Schedule, reason: String) {
        self.schedule = schedule
        self.reason = reason
    }

    /// The end of this window's occurrence that contains `now`, or nil when the window is
    /// not in force at `now`.
    public func end(ifActiveAt now: Date) -> Date? {
        switch schedule {
        case let .once(from, until):
            return from <= now && now < until ? until : nil
        case let .weekly(days, from, until, zone):
            let offset = zone.offset(at: now)
            let local = Int64(now.timeIntervalSince1970.rounded(.down)) + Int64(offset)
            let today = local >= 0 ? local / 86_400 : (local - 86_399) / 86_400
            // An occurrence that crosses midnight may have started yesterday.
            for startDay in [today - 1, today] where days.contains(.of(day: startDay)) {
                let start = startDay * 86_400 + Int64(from) * 60
                let endDay = until > from ? startDay : startDay + 1
                let end = endDay * 86_400 + Int64(until) * 60
                if start <= local, local < end {
                    // At the offset in force at the end: a daylight saving change inside
                    // the occurrence moves its end in UTC.
                    let guess = end - Int64(offset)
                    let atEnd = end - Int64(zone.offset(at: Date(timeIntervalSince1970: Double(guess))))
                    let utcEnd = atEnd > Int64(now.timeIntervalSince1970.rounded(.down)) ? atEnd : guess
                    return Date(timeIntervalSince1970: Double(utcEnd))
                }
            }
            return nil
        }
    }

    /// The window as an operator wrote it, for messages: `weekly fri,sat 16:00-23:59 +01:00`
    /// or `weekly mon 09:00-10:00 Europe/Berlin`.
    public var summary: String {
        switch schedule {
        case let .once(from, until):
            return "\(RFC3339.format(from)) to \(RFC3339.format(until))"
        case let .weekly(days, from, until, zone):
            let dayList = days.sorted().map(\.rawValue).joined(separator: ",")
            return "weekly \(dayList) \(Self.clock(from))-\(Self.clock(until)) \(zone.text)"
        }
    }

    static func clock(_ minutes: Int) -> String {
        let h = minutes / 60, m = minutes % 60
        return (h < 10 ? "0\(h)" : "\(h)") + ":" + (m < 10 ? "0\(m)" : "\(m)")
    }

    static func offsetText(_ seconds: Int) -> String {
        if seconds == 0 { return "UTC" }
        return (seconds < 0 ? "-" : "+") + clock(abs(seconds) / 60)
    }
}

/// An environment's freeze in force at some instant: the windows that hold it, and when
/// it lifts (windows that overlap or follow one another without a gap count as one).
public struct ActiveFreeze: Sendable, Equatable {
    public var environment: String
    public var windows: [FreezeWindow]
    public var until: Date

    /// `production is frozen until 2026-12-27T00:00:00Z (holidays: ...)`.
    public var summary: String {
        "environment \(environment) is frozen until \(RFC3339.format(until)) (\(windows.map { "\($0.reason); \($0.summary)" }.joined(separator: " / ")))"
    }
}

extension TrustPolicy {
    /// The freeze of `environment` in force at `now`, or nil when changes may go out.
    public func activeFreeze(of environment: String, at now: Date) -> ActiveFreeze? {
        guard let env = environments[environment] else { return nil }
        let holding = env.freezes.filter { $0.end(ifActiveAt: now) != nil }
        guard var until = holding.compactMap({ $0.end(ifActiveAt: now) }).max() else { return nil }
        var windows = holding
        // Follow windows that take over where another ends; bounded, in case a policy
        // freezes every day of the week around the clock.
        for _ in 0..<1000 {
            let next = env.freezes.filter { $0.end(ifActiveAt: until) != nil }
            guard let later = next.compactMap({ $0.end(ifActiveAt: until) }).max(), later > until else { break }
            for window in next where !windows.contains(window) { windows.append(window) }
            until = later
        }
        return ActiveFreeze(environment: environment, windows: windows, until: until)
    }
}
