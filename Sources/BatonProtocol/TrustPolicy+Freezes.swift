#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Reading an environment's `freezes:` and `breakGlass:` from the trust policy file:
/// ```yaml
/// production:
///   threshold: 2
///   keys: [alice, bob, carol]
///   freezes:
///     - {from: "2026-12-23T00:00:00Z", until: "2027-01-02T00:00:00Z", reason: "holidays"}
///     - weekly: {days: [fri], from: "16:00", until: "24:00"}
///       zone: Europe/Berlin        # a named zone, or a UTC offset ("+01:00"); default UTC
///       reason: "no deploys into the weekend"
///   breakGlass: {keys: [carol, cto]}   # default: threshold + 1 distinct keys of the environment
/// ```
extension TrustPolicy {
    static func parseFreezes(_ node: YAMLValue) throws(ConfigurationError) -> [FreezeWindow] {
        var windows: [FreezeWindow] = []
        for item in try node.list() {
            let window = try item.mapping()
            let reasonNode = try window.require("reason")
            let reason = try reasonNode.string()
            guard !reason.allSatisfy(\.isWhitespace) else {
                throw reasonNode.error(.invalidValue, "say why changes are frozen; the reason is shown to whoever is refused")
            }
            if let weekly = window["weekly"] {
                try window.allowOnly(["weekly", "zone", "reason"])
                let zone = try window["zone"].map { (node) throws(ConfigurationError) in try parseZone(node) } ?? FreezeWindow.Zone.offset(0)
                windows.append(FreezeWindow(schedule: try weeklySchedule(weekly, zone: zone), reason: reason))
            } else {
                try window.allowOnly(["from", "until", "reason", "weekly"])
                let fromNode = try window.require("from")
                let untilNode = try window.require("until")
                let from = try instant(fromNode)
                let until = try instant(untilNode)
                guard from < until else {
                    throw untilNode.error(.invalidValue, "until must be after from (\(RFC3339.format(from)))")
                }
                windows.append(FreezeWindow(schedule: .once(from: from, until: until), reason: reason))
            }
        }
        return windows
    }

    private static func instant(_ node: YAMLValue) throws(ConfigurationError) -> Date {
        let text = try node.string()
        guard let date = RFC3339.parse(text) else {
            throw node.error(.invalidValue, "'\(text)' is not an RFC 3339 time; write it like 2026-12-23T00:00:00Z or 2026-12-23T00:00:00+01:00")
        }
        return date
    }

    private static func weeklySchedule(_ node: YAMLValue, zone: FreezeWindow.Zone) throws(ConfigurationError) -> FreezeWindow.Schedule {
        let weekly = try node.mapping()
        try weekly.allowOnly(["days", "from", "until"])
        var days = Set<FreezeWindow.Weekday>()
        let daysNode = try weekly.require("days")
        for item in try daysNode.list() {
            let text = try item.string().lowercased()
            guard let day = FreezeWindow.Weekday(rawValue: text) else {
                throw item.error(.invalidValue, "'\(text)' is not a day; write mon, tue, wed, thu, fri, sat or sun")
            }
            guard days.insert(day).inserted else { throw item.error(.invalidValue, "'\(text)' is listed twice") }
        }
        if days.isEmpty { throw daysNode.error(.invalidValue, "name at least one day") }
        let fromNode = try weekly.require("from")
        let untilNode = try weekly.require("until")
        let from = try timeOfDay(fromNode, allowingEndOfDay: false)
        let until = try timeOfDay(untilNode, allowingEndOfDay: true)
        guard from != until else {
            throw untilNode.error(.invalidValue, "a window from \(FreezeWindow.clock(from)) until \(FreezeWindow.clock(until)) is empty; for a whole day write from: \"00:00\", until: \"24:00\"")
        }
        return .weekly(days: days, from: from, until: until, zone: zone)
    }

    /// `HH:MM`, 00:00 to 23:59, or 24:00 for the end of a day.
    private static func timeOfDay(_ node: YAMLValue, allowingEndOfDay: Bool) throws(ConfigurationError) -> Int {
        let text = try node.string()
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        if parts.count == 2, parts[0].count == 2, parts[1].count == 2, let h = Int(parts[0]), let m = Int(parts[1]),
            (0..<60).contains(m), (0..<24).contains(h) || (allowingEndOfDay && h == 24 && m == 0)
        {
            return h * 60 + m
        }
        throw node.error(
            .invalidValue, "'\(text)' is not a time of day; write it as HH:MM in quotes, like \"16:00\"\(allowingEndOfDay ? " (\"24:00\" for the end of the day)" : "")")
    }

    /// `UTC`, `Z`, `+HH:MM` / `-HH:MM`, or a zone of the system's time zone database
    /// (`Europe/Berlin`), read now: an unknown zone fails the policy (`unknown_time_zone`).
    private static func parseZone(_ node: YAMLValue) throws(ConfigurationError) -> FreezeWindow.Zone {
        let text = try node.string()
        if text == "UTC" || text == "Z" { return .offset(0) }
        let bytes = Array(text.utf8)
        if bytes.count == 6, bytes[0] == 0x2B || bytes[0] == 0x2D, bytes[3] == 0x3A,
            let h = Int(String(decoding: bytes[1..<3], as: UTF8.self)), let m = Int(String(decoding: bytes[4..<6], as: UTF8.self)),
            h <= 14, m < 60
        {
            return .offset((h * 3600 + m * 60) * (bytes[0] == 0x2B ? 1 : -1))
        }
        guard TimeZoneFile.isValidName(text), text.utf8.contains(where: { ($0 | 0x20) >= 0x61 && ($0 | 0x20) <= 0x7A }) else {
            throw node.error(
                .invalidValue,
                "zone '\(text)' is not UTC, a UTC offset like \"+01:00\" or a time zone name like Europe/Berlin (letters, digits, _ + - in segments separated by /)")
        }
        do {
            return .named(try TimeZoneFile.load(named: text, directory: TimeZoneFile.defaultDirectory))
        } catch {
            throw node.error(.unknownTimeZone, error.description)
        }
    }

    /// `breakGlass: {keys: [...]}`: the keys every one of which must sign to deploy during
    /// a freeze. Any key of the policy may be named (an approver who does not release
    /// day to day, say); the environment's threshold must still be met as usual.
    static func parseBreakGlassKeys(
        _ node: YAMLValue, keys: [String: VerifyingKey]
    ) throws(ConfigurationError) -> [String] {
        let breakGlass = try node.mapping()
        try breakGlass.allowOnly(["keys"])
        let keysNode = try breakGlass.require("keys")
        var names: [String] = []
        for item in try keysNode.list() {
            let name = try item.string()
            guard keys[name] != nil else {
                throw item.error(.unknownKey, "key '\(name)' is not listed under 'keys'; add it there or remove it here")
            }
            if names.contains(name) { throw item.error(.invalidValue, "key '\(name)' is listed twice") }
            names.append(name)
        }
        if names.isEmpty { throw keysNode.error(.invalidValue, "name the keys that must all sign to break glass") }
        return names
    }
}
