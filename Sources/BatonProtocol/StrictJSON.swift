/// The one reading of a signed JSON payload that the decoder is allowed to see.
///
/// Signatures are over bytes, so everything rests on every tool reading those bytes the
/// same way. JSON leaves three gaps open: parsers disagree on which of two same-named
/// members wins, some give up (or recurse out of stack) on deep nesting where others do
/// not, and many accept extras such as `NaN`, trailing commas or lone surrogates. A
/// payload passes only when it is RFC 8259 JSON read completely to its end, with no
/// object naming a member twice and no nesting deeper than `maxDepth`; then every
/// conforming reader builds the same value from it, whichever member it would have
/// preferred. Anything this reader cannot read to the end is refused, never waved
/// through, because "could not check" must not mean "nothing wrong".
///
/// Member names are compared as Swift strings (Unicode canonical equivalence), which is
/// how `JSONDecoder` keys its objects: `"\u00e9"` and `"e\u0301"` name the same member
/// to the decoder, so they are a duplicate here too.
public enum StrictJSON {
    /// Objects and arrays nested deeper than this are refused (the top-level value is
    /// level 1). Manifests use five levels; 32 leaves room for growth while staying far
    /// below any parser's own limit, so no parser can fail where this one passed.
    public static let maxDepth = 32

    /// Why a payload was refused and where: the byte offset and the path of the value
    /// being read, so the author can find the place to fix.
    public struct Refusal: Error, Sendable, Equatable, CustomStringConvertible {
        public enum Problem: Sendable, Equatable {
            /// An object names this member twice.
            case duplicateMember(String)
            /// Objects and arrays nest deeper than `maxDepth`.
            case tooDeep
            /// Not JSON at this point; says what was expected or found.
            case malformed(String)
        }

        public let problem: Problem
        /// Offset of the offending byte from the start of the payload.
        public let offset: Int
        /// Where in the document, like `hooks.activate` or `health.checks[0]`; empty at the top level.
        public let path: String

        public var description: String {
            let place = path.isEmpty ? "at the top level" : "in \(path)"
            switch problem {
            case .duplicateMember(let name):
                return "the payload names '\(name)' twice \(place) (byte \(offset)); JSON parsers disagree on which member wins, so it is refused"
            case .tooDeep:
                return "the payload nests objects and arrays deeper than \(StrictJSON.maxDepth) levels \(place) (byte \(offset)); it is refused so that no parser gives up where another reads on"
            case .malformed(let what):
                return "the payload is not JSON that can be read to its end: \(what) \(place) (byte \(offset))"
            }
        }
    }

    /// Reads `bytes` as one JSON value followed by nothing but whitespace. Returns when
    /// every rule holds; throws the first problem otherwise.
    public static func check(_ bytes: [UInt8]) throws(Refusal) {
        var reader = Reader(bytes: bytes)
        try reader.document()
    }

    private enum PathComponent {
        case member(String)
        case index(Int)
    }

    private struct Reader {
        let bytes: [UInt8]
        var index = 0
        var depth = 0
        var path: [PathComponent] = []

        init(bytes: [UInt8]) { self.bytes = bytes }

        mutating func document() throws(Refusal) {
            skipSpace()
            try value()
            skipSpace()
            if index < bytes.count { throw refusal(.malformed("\(found) after the end of the value")) }
        }

        // MARK: Values

        mutating func value() throws(Refusal) {
            guard index < bytes.count else { throw refusal(.malformed("the payload ends where a value should start")) }
            switch bytes[index] {
            case UInt8(ascii: "{"): try object()
            case UInt8(ascii: "["): try array()
            case UInt8(ascii: "\""): _ = try string()
            case UInt8(ascii: "t"): try literal("true")
            case UInt8(ascii: "f"): try literal("false")
            case UInt8(ascii: "n"): try literal("null")
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try number()
            default: throw refusal(.malformed("\(found) where a value should start"))
            }
        }

        mutating func enter() throws(Refusal) {
            depth += 1
            if depth > StrictJSON.maxDepth { throw refusal(.tooDeep) }
            index += 1
        }

        mutating func object() throws(Refusal) {
            try enter()
            defer { depth -= 1 }
            var names = Set<String>()
            skipSpace()
            if peek(UInt8(ascii: "}")) {
                index += 1
                return
            }
            while true {
                skipSpace()
                guard peek(UInt8(ascii: "\"")) else {
                    throw refusal(.malformed("\(found) where a member name in double quotes should start"))
                }
                let nameOffset = index
                let name = try string()
                if !names.insert(name).inserted {
                    throw Refusal(problem: .duplicateMember(Self.printable(name)), offset: nameOffset, path: renderedPath)
                }
                skipSpace()
                guard peek(UInt8(ascii: ":")) else {
                    throw refusal(.malformed("\(found) where ':' should follow a member name"))
                }
                index += 1
                skipSpace()
                path.append(.member(name))
                try value()
                path.removeLast()
                skipSpace()
                if peek(UInt8(ascii: ",")) {
                    index += 1
                } else if peek(UInt8(ascii: "}")) {
                    index += 1
                    return
                } else {
                    throw refusal(.malformed("\(found) where ',' or '}' should follow a member"))
                }
            }
        }

        mutating func array() throws(Refusal) {
            try enter()
            defer { depth -= 1 }
            skipSpace()
            if peek(UInt8(ascii: "]")) {
                index += 1
                return
            }
            var element = 0
            while true {
                skipSpace()
                path.append(.index(element))
                try value()
                path.removeLast()
                element += 1
                skipSpace()
                if peek(UInt8(ascii: ",")) {
                    index += 1
                } else if peek(UInt8(ascii: "]")) {
                    index += 1
                    return
                } else {
                    throw refusal(.malformed("\(found) where ',' or ']' should follow an element"))
                }
            }
        }

        mutating func literal(_ word: String) throws(Refusal) {
            guard bytes[index...].starts(with: word.utf8) else {
                throw refusal(.malformed("\(found) where '\(word)' was expected"))
            }
            index += word.utf8.count
        }

        /// RFC 8259 numbers only: no leading zeros, no '+', no bare '.', no NaN or Infinity.
        mutating func number() throws(Refusal) {
            if peek(UInt8(ascii: "-")) { index += 1 }
            if peek(UInt8(ascii: "0")) {
                index += 1
            } else if digits() == 0 {
                throw refusal(.malformed("\(found) where a digit should follow '-'"))
            }
            if peek(UInt8(ascii: ".")) {
                index += 1
                if digits() == 0 { throw refusal(.malformed("\(found) where a digit should follow '.'")) }
            }
            if peek(UInt8(ascii: "e")) || peek(UInt8(ascii: "E")) {
                index += 1
                if peek(UInt8(ascii: "+")) || peek(UInt8(ascii: "-")) { index += 1 }
                if digits() == 0 { throw refusal(.malformed("\(found) where an exponent's digits should be")) }
            }
        }

        mutating func digits() -> Int {
            let start = index
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
            return index - start
        }

        /// A string's text with escapes resolved, so `"a"` and `"\u0061"` are the same name.
        /// Refuses what a strict reader refuses: raw control characters, unknown escapes,
        /// lone surrogates and bytes that are not UTF-8.
        mutating func string() throws(Refusal) -> String {
            let start = index
            index += 1
            var out: [UInt8] = []
            while index < bytes.count {
                let byte = bytes[index]
                switch byte {
                case UInt8(ascii: "\""):
                    index += 1
                    guard let text = String(validating: out, as: UTF8.self) else {
                        throw Refusal(problem: .malformed("a string that is not UTF-8"), offset: start, path: renderedPath)
                    }
                    return text
                case UInt8(ascii: "\\"):
                    index += 1
                    try escape(into: &out)
                case 0x00..<0x20:
                    throw refusal(.malformed("a raw control character (U+\(Self.hex(UInt32(byte)))) inside a string; write it as an escape"))
                default:
                    out.append(byte)
                    index += 1
                }
            }
            throw Refusal(problem: .malformed("a string that is never closed"), offset: start, path: renderedPath)
        }

        mutating func escape(into out: inout [UInt8]) throws(Refusal) {
            guard index < bytes.count else { throw refusal(.malformed("the payload ends inside an escape")) }
            let letter = bytes[index]
            index += 1
            switch letter {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(letter)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                let escapeStart = index - 2
                var code = try hexQuad()
                if (0xDC00...0xDFFF).contains(code) {
                    throw Refusal(problem: .malformed("a low surrogate escape without a high one before it"),
                                  offset: escapeStart, path: renderedPath)
                }
                if (0xD800...0xDBFF).contains(code) {
                    guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u")
                    else {
                        throw Refusal(problem: .malformed("a high surrogate escape without a low one after it"),
                                      offset: escapeStart, path: renderedPath)
                    }
                    index += 2
                    let low = try hexQuad()
                    guard (0xDC00...0xDFFF).contains(low) else {
                        throw Refusal(problem: .malformed("a high surrogate escape without a low one after it"),
                                      offset: escapeStart, path: renderedPath)
                    }
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                }
                // Surrogates were handled above, so every remaining code is a scalar.
                guard let scalar = Unicode.Scalar(code) else {
                    throw Refusal(problem: .malformed("an escape that names no character"), offset: escapeStart, path: renderedPath)
                }
                out.append(contentsOf: scalar.utf8)
            default:
                index -= 1
                throw refusal(.malformed("\(found) where an escape letter (\" \\ / b f n r t u) should follow '\\'"))
            }
        }

        mutating func hexQuad() throws(Refusal) -> UInt32 {
            var value: UInt32 = 0
            for _ in 0..<4 {
                guard index < bytes.count, let digit = Self.hexValue(bytes[index]) else {
                    throw refusal(.malformed("\(found) where '\\u' needs four hex digits"))
                }
                value = value << 4 | digit
                index += 1
            }
            return value
        }

        // MARK: Helpers

        mutating func skipSpace() {
            // RFC 8259 whitespace only: a vertical tab, form feed or no-break space is not.
            while index < bytes.count,
                bytes[index] == 0x20 || bytes[index] == 0x09 || bytes[index] == 0x0A || bytes[index] == 0x0D
            {
                index += 1
            }
        }

        func peek(_ byte: UInt8) -> Bool { index < bytes.count && bytes[index] == byte }

        /// The byte at `index`, for messages.
        var found: String {
            guard index < bytes.count else { return "the end of the payload" }
            let byte = bytes[index]
            if (0x21...0x7E).contains(byte) { return "'\(Character(Unicode.Scalar(byte)))'" }
            return "byte 0x\(Self.hex(UInt32(byte), width: 2))"
        }

        func refusal(_ problem: Refusal.Problem) -> Refusal {
            Refusal(problem: problem, offset: index, path: renderedPath)
        }

        var renderedPath: String {
            var text = ""
            for component in path {
                switch component {
                case .member(let name):
                    if !text.isEmpty { text += "." }
                    text += Self.printable(name)
                case .index(let i):
                    text += "[\(i)]"
                }
            }
            return text
        }

        /// A member name fit for a one-line message: control characters escaped, long names cut.
        static func printable(_ name: String) -> String {
            var text = ""
            for scalar in name.unicodeScalars.prefix(64) {
                if scalar.value < 0x20 || scalar.value == 0x7F || (0x80..<0xA0).contains(scalar.value) {
                    text += "\\u{\(hex(scalar.value))}"
                } else {
                    text.unicodeScalars.append(scalar)
                }
            }
            return name.unicodeScalars.count > 64 ? text + "..." : text
        }

        static func hexValue(_ byte: UInt8) -> UInt32? {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(byte - UInt8(ascii: "A") + 10)
            default: nil
            }
        }

        static func hex(_ value: UInt32, width: Int = 4) -> String {
            let digits = String(value, radix: 16, uppercase: true)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
    }
}
