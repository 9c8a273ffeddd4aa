/// One 512-byte tar header block, decoded (ustar, GNU and old v7 layouts).
struct TarHeader {
    static let blockSize = 512

    /// Typeflags of the metadata headers that describe the next member.
    static let paxLocal = UInt8(ascii: "x")
    static let paxGlobal = UInt8(ascii: "g")
    static let gnuLongName = UInt8(ascii: "L")
    static let gnuLongLink = UInt8(ascii: "K")

    var name: [UInt8]
    var mode: UInt32
    var size: UInt64
    var modificationTime: Int64
    var typeflag: UInt8
    var linkName: [UInt8]

    /// Decodes `block` (512 bytes, not all zero). `offset` is where it starts in the stream, for messages.
    init(block: [UInt8], offset: UInt64) throws(ExtractionError) {
        precondition(block.count == Self.blockSize)
        let rawName = Self.string(block[0..<100])
        func corrupt(_ what: String) -> ExtractionError {
            let shown = rawName.isEmpty ? "" : " (entry '\(ExtractionError.displayName(rawName))')"
            return ExtractionError(
                .corruptHeader, entry: rawName.isEmpty ? nil : ExtractionError.displayName(rawName),
                "tar header at byte \(offset)\(shown) \(what); the archive is damaged or not a tar file, rebuild it")
        }

        guard let stored = Self.number(block[148..<156]) else { throw corrupt("has an unreadable checksum field") }
        var unsigned: Int64 = 0
        var signed: Int64 = 0
        for index in 0..<Self.blockSize {
            // The checksum is computed with its own field read as eight spaces. Some old
            // tars summed signed chars; both sums are accepted, as GNU tar and Python do.
            let byte = (148..<156).contains(index) ? UInt8(ascii: " ") : block[index]
            unsigned += Int64(byte)
            signed += Int64(Int8(bitPattern: byte))
        }
        guard stored == unsigned || stored == signed else {
            throw corrupt("has a bad checksum (stored \(stored), computed \(unsigned))")
        }

        guard let mode = Self.number(block[100..<108]), mode >= 0 else { throw corrupt("has an unreadable mode field") }
        guard let size = Self.number(block[124..<136]), size >= 0 else { throw corrupt("has an unreadable size field") }
        guard let mtime = Self.number(block[136..<148]) else { throw corrupt("has an unreadable mtime field") }

        self.mode = UInt32(truncatingIfNeeded: mode) & 0o7777
        self.size = UInt64(size)
        self.modificationTime = mtime
        self.typeflag = block[156]
        self.linkName = Self.string(block[157..<257])

        // POSIX ustar splits long names into prefix + "/" + name; GNU's "ustar  " magic
        // uses the prefix area for other things, so it is only read for real ustar.
        let isPOSIX = block[257..<263].elementsEqual("ustar\0".utf8)
        let prefix = isPOSIX ? Self.string(block[345..<500]) : []
        self.name = prefix.isEmpty ? rawName : prefix + [UInt8(ascii: "/")] + rawName
    }

    /// A NUL-terminated field: the bytes before the first NUL.
    static func string(_ field: ArraySlice<UInt8>) -> [UInt8] {
        if let end = field.firstIndex(of: 0) { return Array(field[field.startIndex..<end]) }
        return Array(field)
    }

    /// A numeric field: octal digits (padded with spaces or NULs), or GNU base-256 when the
    /// first byte is 0x80 (positive) or 0xff (negative). `nil` when unreadable or out of range.
    static func number(_ field: ArraySlice<UInt8>) -> Int64? {
        guard let first = field.first else { return nil }
        if first == 0x80 || first == 0xff {
            // Big-endian two's complement over the bytes after the marker. Bytes beyond the
            // last eight must be pure sign fill, or the value does not fit in 64 bits.
            let body = field.dropFirst()
            let fill: UInt8 = first == 0x80 ? 0 : 0xff
            guard body.dropLast(8).allSatisfy({ $0 == fill }) else { return nil }
            var value: UInt64 = first == 0x80 ? 0 : .max
            for byte in body.suffix(8) { value = value << 8 | UInt64(byte) }
            let result = Int64(bitPattern: value)
            guard (result >= 0) == (first == 0x80) else { return nil }
            return result
        }
        var digits = string(field)[...]
        while let byte = digits.first, byte == UInt8(ascii: " ") { digits = digits.dropFirst() }
        while let byte = digits.last, byte == UInt8(ascii: " ") { digits = digits.dropLast() }
        var value: Int64 = 0
        for byte in digits {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "7"), value >> 60 == 0 else { return nil }
            value = value << 3 | Int64(byte - UInt8(ascii: "0"))
        }
        return value
    }
}
