#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A named time zone read from the system's time zone database: a TZif file (RFC 8536)
/// such as `/usr/share/zoneinfo/Europe/Berlin`. FoundationEssentials has no time zone
/// database of its own, so BatonProtocol reads the files the system ships: the
/// transitions (the 64-bit section of a version 2 or later file, the 32-bit one of a
/// version 1 file), each transition's UTC offset, and the footer's POSIX TZ string for the
/// instants after the last transition (`CET-1CEST,M3.5.0,M10.5.0/3`). Only what a change
/// freeze needs: the UTC offset at an instant.
public struct TimeZoneFile: Sendable, Equatable {
    /// The zone's name, as the policy wrote it: `Europe/Berlin`.
    public let name: String
    /// Transition instants (Unix seconds), ascending, and the UTC offset from each on.
    let transitions: [Int64]
    let offsets: [Int32]
    /// The offset before the first transition (local time type 0).
    let initialOffset: Int32
    /// For instants at or after the last transition (nil: the last offset holds).
    let footer: PosixRule?

    /// Where zones are read from.
    public static let defaultDirectory = "/usr/share/zoneinfo"
    /// No zone file comes near this; a larger one is not a zone file.
    static let maxFileBytes = 1 << 20

    /// What went wrong reading a zone (`ConfigurationError.Code.unknownTimeZone` in a policy).
    public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// A zone name: segments of `[A-Za-z0-9_+-]` separated by `/`, 1 to 128 bytes (no
    /// `.` at all, so no `..`, and no leading `/`: the name stays inside the directory).
    public static func isValidName(_ name: String) -> Bool {
        guard (1...128).contains(name.utf8.count) else { return false }
        let segments = name.split(separator: "/", omittingEmptySubsequences: false)
        return segments.allSatisfy { segment in
            !segment.isEmpty && segment.utf8.allSatisfy { b in
                (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) || b == 0x5F || b == 0x2B
                    || b == 0x2D
            }
        }
    }

    /// Reads `directory/name`. Throws when the name is not a zone name, when there is no
    /// such file, when it is not a TZif file, or when its footer is a rule this reader
    /// cannot evaluate (only `Mm.w.d` rules are read).
    public static func load(named name: String, directory: String = defaultDirectory) throws(Failure) -> TimeZoneFile {
        guard isValidName(name) else {
            throw Failure("'\(name)' is not a time zone name; write it like Europe/Berlin (letters, digits, _ + - in segments separated by /)")
        }
        let path = directory + "/" + name
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw Failure("unknown time zone '\(name)': \(path) cannot be read; name a zone of the system's time zone database (e.g. Europe/Berlin)")
        }
        guard data.count <= maxFileBytes else { throw Failure("\(path) is not a time zone file (over 1 MiB)") }
        do {
            return try parse(Array(data), name: name)
        } catch {
            throw Failure("time zone '\(name)' (\(path)): \(error.description)")
        }
    }

    /// Parses TZif bytes (RFC 8536).
    static func parse(_ bytes: [UInt8], name: String) throws(Failure) -> TimeZoneFile {
        var reader = Reader(bytes: bytes)
        let v1 = try reader.header()
        var header = v1
        var timeSize = 4
        if v1.version >= 2 {
            // Skip the 32-bit block: the 64-bit one after it says the same, over more years.
            try reader.skip(v1.blockSize(timeSize: 4))
            header = try reader.header()
            timeSize = 8
        }
        var transitions: [Int64] = []
        for _ in 0..<header.timecnt { transitions.append(try reader.integer(timeSize)) }
        var indices: [Int] = []
        for _ in 0..<header.timecnt { indices.append(Int(try reader.byte())) }
        var types: [Int32] = []
        for _ in 0..<header.typecnt {
            types.append(Int32(truncatingIfNeeded: try reader.integer(4)))
            _ = try reader.byte()  // isdst
            _ = try reader.byte()  // desigidx
        }
        guard !types.isEmpty else { throw Failure("no local time types") }
        guard indices.allSatisfy({ $0 < types.count }) else { throw Failure("a transition names a missing local time type") }
        guard zip(transitions, transitions.dropFirst()).allSatisfy({ $0 < $1 }) else {
            throw Failure("transitions are not in ascending order")
        }
        try reader.skip(header.charcnt + header.leapcnt * (timeSize + 4) + header.isstdcnt + header.isutcnt)
        var footer: PosixRule?
        if header.version >= 2 {
            guard try reader.byte() == 0x0A else { throw Failure("no footer") }
            let rest = reader.remaining
            guard let end = rest.firstIndex(of: 0x0A) else { throw Failure("the footer is not terminated") }
            let text = String(decoding: rest[rest.startIndex..<end], as: UTF8.self)
            if !text.isEmpty { footer = try PosixRule(parsing: text) }
        }
        return TimeZoneFile(
            name: name, transitions: transitions, offsets: indices.map { types[$0] }, initialOffset: types[0],
            footer: footer)
    }

    /// The UTC offset in seconds at `instant` (`+3600` in Berlin in January).
    public func offset(at instant: Date) -> Int {
        let t = Int64(instant.timeIntervalSince1970.rounded(.down))
        if let last = transitions.last, t >= last, let footer { return footer.offset(at: t) }
        if transitions.isEmpty { return footer?.offset(at: t) ?? Int(initialOffset) }
        guard t >= transitions[0] else { return Int(initialOffset) }
        // The last transition at or before t.
        var low = 0, high = transitions.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if transitions[mid] <= t { low = mid } else { high = mid - 1 }
        }
        return Int(offsets[low])
    }

    private struct Header {
        var version: Int
        var isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt: Int

        func blockSize(timeSize: Int) -> Int {
            timecnt * timeSize + timecnt + typecnt * 6 + charcnt + leapcnt * (timeSize + 4) + isstdcnt + isutcnt
        }
    }

    private struct Reader {
        let bytes: [UInt8]
        var at = 0

        var remaining: ArraySlice<UInt8> { bytes[at...] }

        mutating func byte() throws(Failure) -> UInt8 {
            guard at < bytes.count else { throw Failure("the file ends early") }
            defer { at += 1 }
            return bytes[at]
        }

        /// A big-endian signed integer of 4 or 8 bytes.
        mutating func integer(_ size: Int) throws(Failure) -> Int64 {
            guard at + size <= bytes.count else { throw Failure("the file ends early") }
            var value: UInt64 = 0
            for b in bytes[at..<at + size] { value = value << 8 | UInt64(b) }
            at += size
            return size == 4 ? Int64(Int32(truncatingIfNeeded: value)) : Int64(bitPattern: value)
        }

        mutating func skip(_ count: Int) throws(Failure) {
            guard count >= 0, at + count <= bytes.count else { throw Failure("the file ends early") }
            at += count
        }

        mutating func header() throws(Failure) -> Header {
            guard at + 44 <= bytes.count, Array(bytes[at..<at + 4]) == Array("TZif".utf8) else {
                throw Failure("not a TZif file")
            }
            let versionByte = bytes[at + 4]
            let version = versionByte == 0 ? 1 : Int(versionByte) - 0x30
            guard (1...9).contains(version) else { throw Failure("unknown TZif version") }
            at += 20
            var counts: [Int] = []
            for _ in 0..<6 {
                let count = try integer(4)
                guard (0...100_000).contains(count) else { throw Failure("a count is out of bounds") }
                counts.append(Int(count))
            }
            let h = Header(
                version: version, isutcnt: counts[0], isstdcnt: counts[1], leapcnt: counts[2], timecnt: counts[3],
                typecnt: counts[4], charcnt: counts[5])
            guard h.typecnt >= 1 else { throw Failure("no local time types") }
            return h
        }
    }
}

/// A POSIX TZ string as TZif footers carry it: `STD offset [DST [offset] [,start[/time],end[/time]]]`,
/// the rules as `Mm.w.d` (month, week 1 to 5 where 5 is the last, weekday 0 = Sunday).
/// Offsets are POSIX's, west positive (`CET-1` is UTC+1); times may be negative or past
/// 24 hours (RFC 8536, 3.3.1).
struct PosixRule: Sendable, Equatable {
    /// UTC offsets, east positive, in seconds.
    var standard: Int
    var daylight: Int?
    /// When daylight time starts and ends (in local standard and daylight time).
    var start: Transition?
    var end: Transition?

    struct Transition: Sendable, Equatable {
        var month: Int
        var week: Int
        var weekday: Int
        var seconds: Int
    }

    init(parsing text: String) throws(TimeZoneFile.Failure) {
        var s = Substring(text)
        func fail(_ why: String) -> TimeZoneFile.Failure {
            TimeZoneFile.Failure("cannot evaluate its rule for future instants '\(text)': \(why)")
        }
        func name() throws(TimeZoneFile.Failure) {
            if s.first == "<" {
                guard let close = s.firstIndex(of: ">") else { throw fail("an unterminated <name>") }
                s = s[s.index(after: close)...]
            } else {
                let letters = s.prefix { $0.isASCII && $0.isLetter }
                guard letters.count >= 3 else { throw fail("a zone abbreviation of fewer than 3 letters") }
                s = s.dropFirst(letters.count)
            }
        }
        /// `[+-]hh[:mm[:ss]]`, hours 0 to 167.
        func time() throws(TimeZoneFile.Failure) -> Int {
            var sign = 1
            if s.first == "+" || s.first == "-" {
                if s.first == "-" { sign = -1 }
                s = s.dropFirst()
            }
            var parts: [Int] = []
            while parts.count < 3 {
                let digits = s.prefix { $0.isASCII && $0.isNumber }
                guard !digits.isEmpty, digits.count <= 3, let value = Int(digits) else { throw fail("a malformed time") }
                parts.append(value)
                s = s.dropFirst(digits.count)
                guard s.first == ":" else { break }
                s = s.dropFirst()
            }
            guard parts[0] <= 167, parts.dropFirst().allSatisfy({ $0 < 60 }) else { throw fail("a time out of range") }
            let seconds = parts[0] * 3600 + (parts.count > 1 ? parts[1] * 60 : 0) + (parts.count > 2 ? parts[2] : 0)
            return sign * seconds
        }
        func transition() throws(TimeZoneFile.Failure) -> Transition {
            guard s.first == "M" else { throw fail("only Mm.w.d rules are read (not Jn or n)") }
            s = s.dropFirst()
            var fields: [Int] = []
            for index in 0..<3 {
                let digits = s.prefix { $0.isASCII && $0.isNumber }
                guard !digits.isEmpty, digits.count <= 2, let value = Int(digits) else { throw fail("a malformed Mm.w.d") }
                fields.append(value)
                s = s.dropFirst(digits.count)
                if index < 2 {
                    guard s.first == "." else { throw fail("a malformed Mm.w.d") }
                    s = s.dropFirst()
                }
            }
            guard (1...12).contains(fields[0]), (1...5).contains(fields[1]), (0...6).contains(fields[2]) else {
                throw fail("a month, week or weekday out of range")
            }
            var seconds = 7200
            if s.first == "/" {
                s = s.dropFirst()
                seconds = try time()
            }
            return Transition(month: fields[0], week: fields[1], weekday: fields[2], seconds: seconds)
        }

        try name()
        standard = -(try time())
        guard !s.isEmpty else { return }
        try name()
        if let c = s.first, c != "," {
            daylight = -(try time())
        } else {
            daylight = standard + 3600
        }
        guard s.first == "," else { throw fail("daylight time without a rule") }
        s = s.dropFirst()
        start = try transition()
        guard s.first == "," else { throw fail("a start without an end") }
        s = s.dropFirst()
        end = try transition()
        guard s.isEmpty else { throw fail("text after the rule") }
    }

    /// The offset at Unix time `t`.
    func offset(at t: Int64) -> Int {
        guard let daylight, let start, let end else { return standard }
        let year = Civil.year(ofDay: Civil.floorDiv(t + Int64(standard), 86_400))
        let begins = start.instant(in: year, offset: standard)
        let ends = end.instant(in: year, offset: daylight)
        let inDaylight = begins < ends ? (begins <= t && t < ends) : (t < ends || t >= begins)
        return inDaylight ? daylight : standard
    }
}

extension PosixRule.Transition {
    /// The instant (Unix seconds) of this transition in `year`, its time read at `offset`.
    func instant(in year: Int64, offset: Int) -> Int64 {
        let first = Civil.day(year: year, month: Int64(month), day: 1)
        let firstWeekday = Int((first % 7 + 7 + 4) % 7)  // 1970-01-01 was a Thursday (4)
        var day = first + Int64((weekday - firstWeekday + 7) % 7) + Int64((week - 1) * 7)
        let next = month == 12 ? Civil.day(year: year + 1, month: 1, day: 1) : Civil.day(year: year, month: Int64(month) + 1, day: 1)
        while day >= next { day -= 7 }
        return day * 86_400 + Int64(seconds) - Int64(offset)
    }
}

/// Days since 1970-01-01 and proleptic Gregorian dates (Howard Hinnant's algorithms).
enum Civil {
    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : (a - b + 1) / b }

    static func day(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = floorDiv(y, 400)
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func year(ofDay days: Int64) -> Int64 {
        let z = days + 719_468
        let era = floorDiv(z, 146_097)
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let month = mp < 10 ? mp + 3 : mp - 9
        return yoe + era * 400 + (month <= 2 ? 1 : 0)
    }
}
