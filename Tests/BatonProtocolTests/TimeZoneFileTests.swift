@testable import BatonProtocol
import Foundation
import Testing

/// Named time zones read from the system's TZif files (`/usr/share/zoneinfo`): offsets
/// from the transitions, and from the footer's POSIX rule after the last one.
@Suite struct TimeZoneFileTests {
    func at(_ text: String) -> Date { RFC3339.parse(text)! }

    @Test func berlinIsAnHourAheadInJanuaryAndTwoInJuly() throws {
        let berlin = try TimeZoneFile.load(named: "Europe/Berlin")
        #expect(berlin.name == "Europe/Berlin")
        #expect(berlin.offset(at: at("2027-01-15T08:30:00Z")) == 3600)
        #expect(berlin.offset(at: at("2027-07-15T07:30:00Z")) == 7200)
        #expect(berlin.offset(at: at("1970-01-01T00:00:00Z")) == 3600)
        // Past the file's last transition (2037): from its footer, CET-1CEST,M3.5.0,M10.5.0/3.
        #expect(berlin.offset(at: at("2100-01-01T00:00:00Z")) == 3600)
        #expect(berlin.offset(at: at("2100-07-01T00:00:00Z")) == 7200)
    }

    @Test func newYorkChangesAtTwoInTheMorningLocalTime() throws {
        let newYork = try TimeZoneFile.load(named: "America/New_York")
        // 2026: the second Sunday of March and the first of November, from the transitions.
        #expect(newYork.offset(at: at("2026-03-08T06:59:59Z")) == -18_000)
        #expect(newYork.offset(at: at("2026-03-08T07:00:00Z")) == -14_400)
        #expect(newYork.offset(at: at("2026-11-01T05:59:59Z")) == -14_400)
        #expect(newYork.offset(at: at("2026-11-01T06:00:00Z")) == -18_000)
        // 2045: the same rule, from the footer (EST5EDT,M3.2.0,M11.1.0).
        #expect(newYork.offset(at: at("2045-03-12T06:59:59Z")) == -18_000)
        #expect(newYork.offset(at: at("2045-03-12T07:00:00Z")) == -14_400)
        #expect(newYork.offset(at: at("2045-11-05T05:59:59Z")) == -14_400)
        #expect(newYork.offset(at: at("2045-11-05T06:00:00Z")) == -18_000)
    }

    /// January and July of 2027 (transitions) and 2045 (footers): the southern hemisphere,
    /// quarter hours, no daylight saving time.
    @Test(arguments: [
        ("Australia/Sydney", [39_600, 36_000, 39_600, 36_000]),
        ("Pacific/Chatham", [49_500, 45_900, 49_500, 45_900]),
        ("Asia/Kolkata", [19_800, 19_800, 19_800, 19_800]),
        ("America/Sao_Paulo", [-10_800, -10_800, -10_800, -10_800]),
        ("Europe/London", [0, 3600, 0, 3600]),
        ("America/Los_Angeles", [-28_800, -25_200, -28_800, -25_200]),
    ])
    func offsetsOfOtherZones(zone: String, expected: [Int]) throws {
        let file = try TimeZoneFile.load(named: zone)
        let instants = ["2027-01-15T12:00:00Z", "2027-07-15T12:00:00Z", "2045-01-15T12:00:00Z", "2045-07-15T12:00:00Z"]
        #expect(instants.map { file.offset(at: at($0)) } == expected)
    }

    /// The footer's rule, evaluated on its own, gives every transition the file lists
    /// from 2008 on (to 2037) to the second, and the offset before each.
    @Test(arguments: ["Europe/Berlin", "America/New_York", "Australia/Sydney", "Pacific/Chatham"])
    func theFootersRuleAgreesWithTheListedTransitions(zone: String) throws {
        let file = try TimeZoneFile.load(named: zone)
        let rule = try #require(file.footer)
        let recent = file.transitions.indices.filter { file.transitions[$0] >= 1_199_145_600 }  // 2008-01-01
        #expect(recent.count > 50)
        for index in recent {
            let t = file.transitions[index]
            #expect(rule.offset(at: t) == Int(file.offsets[index]), "\(zone) at \(t)")
            #expect(rule.offset(at: t - 1) == Int(file.offsets[index - 1]), "\(zone) before \(t)")
        }
    }

    @Test func zoneNamesStayInsideTheDatabase() {
        for name in ["Europe/Berlin", "America/Argentina/Buenos_Aires", "Etc/GMT+1", "Etc/GMT-14", "UTC"] {
            #expect(TimeZoneFile.isValidName(name), "\(name)")
        }
        for name in ["../../etc/passwd", "Europe/../../etc/passwd", "/etc/localtime", "Europe//Berlin", "Europe/", "",
                     "Europe/Berlin\u{0}", "Europe/Berlin.bak", "Europe\\Berlin", String(repeating: "a", count: 129)] {
            #expect(!TimeZoneFile.isValidName(name), "\(name)")
        }
        #expect(throws: TimeZoneFile.Failure.self) { try TimeZoneFile.load(named: "../../../etc/passwd") }
    }

    @Test func whatIsNotAZoneIsRefused() throws {
        let unknown = try #require(throws: TimeZoneFile.Failure.self) { try TimeZoneFile.load(named: "Europe/Atlantis") }
        #expect(unknown.description.hasPrefix("unknown time zone 'Europe/Atlantis'"), "\(unknown)")
        // A directory of the database is not a zone.
        #expect(throws: TimeZoneFile.Failure.self) { try TimeZoneFile.load(named: "Europe") }
        let garbage = try #require(throws: TimeZoneFile.Failure.self) {
            try TimeZoneFile.parse(Array("not a zone file at all, not even close to forty-four bytes".utf8), name: "x")
        }
        #expect(garbage.description == "not a TZif file")
        // A file cut short.
        let berlin = try Data(contentsOf: URL(fileURLWithPath: "/usr/share/zoneinfo/Europe/Berlin"))
        #expect(throws: TimeZoneFile.Failure.self) { try TimeZoneFile.parse(Array(berlin.prefix(600)), name: "cut") }
    }

    @Test func footersThisReaderCannotEvaluateAreRefused() throws {
        #expect(try PosixRule(parsing: "CET-1CEST,M3.5.0,M10.5.0/3").start == .init(month: 3, week: 5, weekday: 0, seconds: 7200))
        #expect(try PosixRule(parsing: "<+0545>-5:45").standard == 20_700)
        #expect(try PosixRule(parsing: "<-03>3<-02>,M3.5.0/-2,M10.5.0/-1").end?.seconds == -3600)
        for rule in ["XXX3YYY,J60,J300", "XXX3YYY,60,300", "CET-1CEST", "CET-1CEST,M3.5.0", "CET-1CEST,M13.5.0,M10.5.0", "C-1"] {
            #expect(throws: TimeZoneFile.Failure.self, "\(rule)") { try PosixRule(parsing: rule) }
        }
    }
}
