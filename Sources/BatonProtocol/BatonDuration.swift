/// A length of time as people write it in manifests and YAML files: `500ms`, `30s`,
/// `5m`, `1h`, or combinations such as `1m30s`. Stored as whole milliseconds.
/// Encoded as the canonical string (largest units first) so manifests stay readable.
public struct BatonDuration: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public let milliseconds: UInt64

    public init(milliseconds: UInt64) { self.milliseconds = milliseconds }
    public static func seconds(_ s: UInt64) -> BatonDuration { BatonDuration(milliseconds: s * 1000) }
    public static func minutes(_ m: UInt64) -> BatonDuration { BatonDuration(milliseconds: m * 60_000) }
    public static let zero = BatonDuration(milliseconds: 0)

    public var seconds: Double { Double(milliseconds) / 1000 }
    public var swiftDuration: Duration { .milliseconds(Int64(clamping: milliseconds)) }

    /// Parses `"90s"`, `"1m30s"`, `"250ms"`, `"2h"`, `"0s"`. Returns nil for anything else
    /// (no bare numbers: a unit is always required, so `60` cannot mean 60 ms by mistake).
    public init?(parsing text: String) {
        var total: UInt64 = 0
        var chars = Substring(text)
        guard !chars.isEmpty else { return nil }
        while !chars.isEmpty {
            let digits = chars.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, digits.count <= 12, let value = UInt64(digits) else { return nil }
            chars = chars.dropFirst(digits.count)
            let unit = chars.prefix { $0.isASCII && $0.isLetter }
            chars = chars.dropFirst(unit.count)
            let factor: UInt64
            switch unit {
            case "ms": factor = 1
            case "s": factor = 1000
            case "m": factor = 60_000
            case "h": factor = 3_600_000
            default: return nil
            }
            let (product, overflow) = value.multipliedReportingOverflow(by: factor)
            guard !overflow else { return nil }
            let (sum, overflow2) = total.addingReportingOverflow(product)
            guard !overflow2 else { return nil }
            total = sum
        }
        milliseconds = total
    }

    /// A validity as people write it in a trust policy or on the command line: whole days
    /// (`7d`) or any duration `init(parsing:)` reads (`36h`). Manifest durations keep
    /// the narrower form: days are not part of the wire format.
    public init?(parsingValidity text: String) {
        if text.hasSuffix("d"), let days = UInt64(text.dropLast()), text.count > 1, days <= 100_000 {
            self.init(milliseconds: days * 86_400_000)
        } else {
            self.init(parsing: text)
        }
    }

    public var description: String {
        if milliseconds == 0 { return "0s" }
        var rest = milliseconds
        var out = ""
        for (factor, unit) in [(UInt64(3_600_000), "h"), (60_000, "m"), (1000, "s"), (1, "ms")] where rest >= factor {
            out += "\(rest / factor)\(unit)"
            rest %= factor
        }
        return out
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let parsed = BatonDuration(parsing: text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "'\(text)' is not a duration; write it like 500ms, 30s, 5m or 1h")
        }
        self = parsed
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    public static func < (a: BatonDuration, b: BatonDuration) -> Bool { a.milliseconds < b.milliseconds }
}
