/// Finds an object that names the same member twice. Parsers disagree on which of the
/// two wins (Foundation keeps the first, most others the last), so the same signed bytes
/// could mean one thing to an approver's tools and another to the agent: such payloads
/// are refused. A small scanner of its own because no JSON parser here reports it.
enum JSONDuplicateKeys {
    /// The first duplicated member name, or nil. Malformed JSON yields nil (the decoder
    /// reports that with a better message).
    static func firstDuplicate(in bytes: [UInt8]) -> String? {
        var scanner = Scanner(bytes: bytes)
        return (try? scanner.value()) ?? nil
    }

    private struct Malformed: Error {}

    private struct Scanner {
        let bytes: [UInt8]
        var index = 0
        var depth = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        mutating func skipSpace() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        }

        /// Scans one value; returns a duplicate name found inside it.
        mutating func value() throws -> String? {
            skipSpace()
            guard index < bytes.count else { throw Malformed() }
            switch bytes[index] {
            case UInt8(ascii: "{"): return try object()
            case UInt8(ascii: "["): return try array()
            case UInt8(ascii: "\""): _ = try string(); return nil
            default:
                while index < bytes.count, ![UInt8(ascii: ","), UInt8(ascii: "]"), UInt8(ascii: "}")].contains(bytes[index]) {
                    index += 1
                }
                return nil
            }
        }

        mutating func object() throws -> String? {
            depth += 1
            guard depth < 512 else { throw Malformed() }
            defer { depth -= 1 }
            index += 1
            var names = Set<[UInt8]>()
            skipSpace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
                index += 1
                return nil
            }
            while true {
                skipSpace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw Malformed() }
                let name = try string()
                if !names.insert(name).inserted { return String(decoding: name, as: UTF8.self) }
                skipSpace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw Malformed() }
                index += 1
                if let duplicate = try value() { return duplicate }
                skipSpace()
                guard index < bytes.count else { throw Malformed() }
                if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                if bytes[index] == UInt8(ascii: "}") { index += 1; return nil }
                throw Malformed()
            }
        }

        mutating func array() throws -> String? {
            depth += 1
            guard depth < 512 else { throw Malformed() }
            defer { depth -= 1 }
            index += 1
            skipSpace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
                index += 1
                return nil
            }
            while true {
                if let duplicate = try value() { return duplicate }
                skipSpace()
                guard index < bytes.count else { throw Malformed() }
                if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                if bytes[index] == UInt8(ascii: "]") { index += 1; return nil }
                throw Malformed()
            }
        }

        /// A string's decoded bytes (escapes resolved, so `"a"` and `"\u0061"` are the same name).
        mutating func string() throws -> [UInt8] {
            index += 1
            var out: [UInt8] = []
            while index < bytes.count {
                let b = bytes[index]
                index += 1
                switch b {
                case UInt8(ascii: "\""):
                    return out
                case UInt8(ascii: "\\"):
                    guard index < bytes.count else { throw Malformed() }
                    let e = bytes[index]
                    index += 1
                    switch e {
                    case UInt8(ascii: "u"):
                        guard index + 4 <= bytes.count,
                            let unit = UInt32(String(decoding: bytes[index..<index + 4], as: UTF8.self), radix: 16)
                        else { throw Malformed() }
                        index += 4
                        var code = unit
                        if (0xD800...0xDBFF).contains(unit), index + 6 <= bytes.count, bytes[index] == UInt8(ascii: "\\"),
                            bytes[index + 1] == UInt8(ascii: "u"),
                            let low = UInt32(String(decoding: bytes[index + 2..<index + 6], as: UTF8.self), radix: 16),
                            (0xDC00...0xDFFF).contains(low)
                        {
                            code = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                            index += 6
                        }
                        out += Array(String(Unicode.Scalar(code).map(Character.init) ?? "\u{FFFD}").utf8)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    default: out.append(e)
                    }
                default:
                    out.append(b)
                }
            }
            throw Malformed()
        }
    }
}
