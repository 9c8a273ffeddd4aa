/// The records of a pax extended header (`x` for the next member, `g` for all following):
/// `"<length> <key>=<value>\n"`, where length counts the whole record in decimal.
struct PaxHeader {
    /// Values are raw bytes: `path` and `linkpath` may be any bytes (`hdrcharset=BINARY`).
    private(set) var records: [String: [UInt8]] = [:]

    init() {}

    /// Parses the data of a pax header. `offset` is the header's position, for messages.
    init(parsing data: [UInt8], offset: UInt64) throws(ExtractionError) {
        func bad(_ what: String) -> ExtractionError {
            ExtractionError(
                .badPaxHeader,
                "pax extended header at byte \(offset) \(what); the archive is damaged, rebuild it")
        }
        let space = UInt8(ascii: " "), newline = UInt8(ascii: "\n"), equals = UInt8(ascii: "=")
        var position = 0
        while position < data.count {
            // Some writers pad the header data with NULs; nothing may follow them.
            if data[position] == 0 {
                guard data[position...].allSatisfy({ $0 == 0 }) else { throw bad("has data after NUL padding") }
                break
            }
            var cursor = position
            var length = 0
            while cursor < data.count, let digit = Self.digit(data[cursor]) {
                length = length * 10 + digit
                guard length <= data.count else { throw bad("has a record longer than the header") }
                cursor += 1
            }
            guard cursor > position, cursor < data.count, data[cursor] == space else {
                throw bad("has a record without a decimal length")
            }
            let end = position + length
            guard length > cursor - position + 1, end <= data.count, data[end - 1] == newline else {
                throw bad("has a record whose length does not match its text")
            }
            let body = data[(cursor + 1)..<(end - 1)]
            guard let separator = body.firstIndex(of: equals), separator > body.startIndex else {
                throw bad("has a record without a key")
            }
            let key = String(decoding: body[body.startIndex..<separator], as: UTF8.self)
            records[key] = Array(body[(separator + 1)...])
            position = end
        }
    }

    subscript(key: String) -> [UInt8]? { records[key] }

    /// Applies `other` on top of these records. An empty value removes the key, as POSIX says
    /// for global headers; for a per-member header it means "use the ustar field".
    mutating func merge(_ other: PaxHeader) {
        for (key, value) in other.records {
            records[key] = value.isEmpty ? nil : value
        }
    }

    var isEmpty: Bool { records.isEmpty }

    /// True when the member is a GNU sparse file (its data is a sparse map, not the content).
    var marksSparse: Bool { records.keys.contains { $0.hasPrefix("GNU.sparse.") } }

    /// A non-negative decimal integer (`size`).
    static func decimal(_ value: [UInt8]) -> UInt64? {
        guard !value.isEmpty, value.count <= 20 else { return nil }
        var result: UInt64 = 0
        for byte in value {
            guard let digit = digit(byte) else { return nil }
            let (times, overflowA) = result.multipliedReportingOverflow(by: 10)
            let (sum, overflowB) = times.addingReportingOverflow(UInt64(digit))
            guard !overflowA, !overflowB else { return nil }
            result = sum
        }
        return result
    }

    /// Seconds of a pax time (`mtime`): `[-]digits[.digits]`; the fraction is dropped.
    static func seconds(_ value: [UInt8]) -> Int64? {
        var text = value[...]
        let negative = text.first == UInt8(ascii: "-")
        if negative { text = text.dropFirst() }
        if let dot = text.firstIndex(of: UInt8(ascii: ".")) {
            guard text[(dot + 1)...].allSatisfy({ digit($0) != nil }) else { return nil }
            text = text[text.startIndex..<dot]
        }
        guard let magnitude = decimal(Array(text)), magnitude <= UInt64(Int64.max) else { return nil }
        return negative ? -Int64(magnitude) : Int64(magnitude)
    }

    private static func digit(_ byte: UInt8) -> Int? {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") ? Int(byte - UInt8(ascii: "0")) : nil
    }
}
