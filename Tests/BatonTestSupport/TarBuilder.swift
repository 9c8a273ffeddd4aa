import Foundation

/// Builds tar archives byte by byte, including broken and hostile ones: any name, typeflag,
/// mode, size or link name; pax `x`/`g` headers; GNU `L`/`K` long names; bad checksums;
/// base-256 sizes; truncation (take a prefix of `bytes`). The member helpers (`file`,
/// `symlink`, ...) add a pax header for names over 100 bytes; `append(_:)` writes exactly
/// the header given.
public struct TarBuilder: Sendable {
    /// Typeflags, for readability at call sites.
    public enum TypeFlag {
        public static let regular = UInt8(ascii: "0")
        public static let oldRegular: UInt8 = 0
        public static let hardLink = UInt8(ascii: "1")
        public static let symlink = UInt8(ascii: "2")
        public static let characterDevice = UInt8(ascii: "3")
        public static let blockDevice = UInt8(ascii: "4")
        public static let directory = UInt8(ascii: "5")
        public static let fifo = UInt8(ascii: "6")
        public static let contiguous = UInt8(ascii: "7")
        public static let paxLocal = UInt8(ascii: "x")
        public static let paxGlobal = UInt8(ascii: "g")
        public static let gnuLongName = UInt8(ascii: "L")
        public static let gnuLongLink = UInt8(ascii: "K")
        public static let gnuSparse = UInt8(ascii: "S")
        public static let volumeLabel = UInt8(ascii: "V")
    }

    /// Which header layout to write.
    public enum Magic: Sendable {
        /// POSIX `ustar\000` (the prefix field is meaningful).
        case ustar
        /// GNU `ustar  \0`.
        case gnu
        /// Old v7: no magic at all.
        case v7
    }

    /// Everything a header block can say.
    public struct Header: Sendable {
        public var name: [UInt8]
        public var typeflag: UInt8
        public var mode: UInt32 = 0o644
        public var size: UInt64 = 0
        public var modificationTime: Int64 = 1_700_000_000
        public var linkName: [UInt8] = []
        public var prefix: [UInt8] = []
        public var magic: Magic = .ustar
        /// Write the size in GNU base-256 instead of octal.
        public var base256Size = false
        /// Bytes written into the size field instead of the encoded size (for unreadable fields).
        public var rawSizeField: [UInt8]?
        /// Added to the correct checksum; anything but 0 makes it wrong.
        public var checksumError = 0

        public init(_ name: [UInt8], typeflag: UInt8 = TypeFlag.regular, size: UInt64 = 0) {
            self.name = name
            self.typeflag = typeflag
            self.size = size
        }

        public init(_ name: String, typeflag: UInt8 = TypeFlag.regular, size: UInt64 = 0) {
            self.init(Array(name.utf8), typeflag: typeflag, size: size)
        }
    }

    /// The archive so far.
    public private(set) var bytes: [UInt8] = []

    public init() {}

    // MARK: - Members

    public mutating func file(_ name: String, _ contents: String, mode: UInt32 = 0o644) {
        file(name, Array(contents.utf8), mode: mode)
    }

    public mutating func file(_ name: String, _ contents: [UInt8], mode: UInt32 = 0o644, mtime: Int64 = 1_700_000_000) {
        var header = Header(name, size: UInt64(contents.count))
        header.mode = mode
        header.modificationTime = mtime
        member(header)
        append(data: contents)
    }

    public mutating func directory(_ name: String, mode: UInt32 = 0o755) {
        var header = Header(name, typeflag: TypeFlag.directory)
        header.mode = mode
        member(header)
    }

    public mutating func symlink(_ name: String, to target: String) {
        var header = Header(name, typeflag: TypeFlag.symlink)
        header.linkName = Array(target.utf8)
        header.mode = 0o777
        member(header)
    }

    public mutating func hardLink(_ name: String, to target: String) {
        var header = Header(name, typeflag: TypeFlag.hardLink)
        header.linkName = Array(target.utf8)
        member(header)
    }

    /// A member of any type with no data (devices, FIFOs, odd typeflags).
    public mutating func entry(_ name: String, typeflag: UInt8, mode: UInt32 = 0o644) {
        var header = Header(name, typeflag: typeflag)
        header.mode = mode
        member(header)
    }

    /// Appends a member header, preceded by a pax header carrying its name or link target
    /// when either is too long for the ustar field (as tar does).
    public mutating func member(_ header: Header) {
        var header = header
        var records: [UInt8] = []
        if header.name.count > 100 {
            records += Self.paxRecord("path", header.name)
            header.name = Array(header.name.prefix(100))
        }
        if header.linkName.count > 100 {
            records += Self.paxRecord("linkpath", header.linkName)
            header.linkName = Array(header.linkName.prefix(100))
        }
        if !records.isEmpty { pax(rawData: records) }
        append(header)
    }

    // MARK: - Metadata headers

    /// A pax extended header (`x`, or `g` when `global`) with these records, in order.
    public mutating func pax(_ records: [(String, String)], global: Bool = false) {
        pax(rawData: records.flatMap { Self.paxRecord($0.0, Array($0.1.utf8)) }, global: global)
    }

    /// A pax header with a binary value (e.g. a path with a NUL).
    public mutating func pax(key: String, bytes value: [UInt8], global: Bool = false) {
        pax(rawData: Self.paxRecord(key, value), global: global)
    }

    /// A pax header whose data is exactly `data` (for malformed records).
    public mutating func pax(rawData data: [UInt8], global: Bool = false) {
        let name = global ? "pax_global_header" : "PaxHeaders.0/entry"
        append(Header(name, typeflag: global ? TypeFlag.paxGlobal : TypeFlag.paxLocal, size: UInt64(data.count)))
        append(data: data)
    }

    /// A GNU long name (`L`) for the next member, NUL-terminated as GNU tar writes it.
    public mutating func gnuLongName(_ name: [UInt8]) {
        gnuLong(TypeFlag.gnuLongName, name)
    }

    public mutating func gnuLongName(_ name: String) { gnuLongName(Array(name.utf8)) }

    /// A GNU long link target (`K`) for the next member.
    public mutating func gnuLongLink(_ target: String) {
        gnuLong(TypeFlag.gnuLongLink, Array(target.utf8))
    }

    private mutating func gnuLong(_ typeflag: UInt8, _ value: [UInt8]) {
        var header = Header("././@LongLink", typeflag: typeflag, size: UInt64(value.count + 1))
        header.magic = .gnu
        append(header)
        append(data: value + [0])
    }

    /// One pax record: `"<length> <key>=<value>\n"`, the length counting itself.
    public static func paxRecord(_ key: String, _ value: [UInt8]) -> [UInt8] {
        let body = Array(" \(key)=".utf8) + value + [UInt8(ascii: "\n")]
        var length = body.count + 1
        while String(length).utf8.count + body.count != length { length += 1 }
        return Array(String(length).utf8) + body
    }

    // MARK: - Raw blocks

    /// Appends a header block.
    public mutating func append(_ header: Header) {
        bytes += Self.block(header)
    }

    /// Appends data and the zero padding up to the next 512-byte boundary.
    public mutating func append(data: [UInt8]) {
        bytes += data
        let padding = (512 - data.count % 512) % 512
        bytes += [UInt8](repeating: 0, count: padding)
    }

    /// Appends bytes as they are.
    public mutating func append(raw: [UInt8]) {
        bytes += raw
    }

    /// The end-of-archive marker: two zero blocks.
    public mutating func end() {
        bytes += [UInt8](repeating: 0, count: 1024)
    }

    /// The archive compressed as one gzip member.
    public func gzipped() -> [UInt8] { GzipWriter.compress(bytes) }

    /// Writes the archive (gzipped when `gzip`) to `path`.
    public func write(to path: String, gzip: Bool = false) throws {
        try Data(gzip ? gzipped() : bytes).write(to: URL(fileURLWithPath: path))
    }

    /// A 512-byte header block.
    public static func block(_ header: Header) -> [UInt8] {
        var block = [UInt8](repeating: 0, count: 512)
        func put(_ value: [UInt8], at offset: Int, width: Int) {
            precondition(value.count <= width, "field too long for the tar header")
            for (index, byte) in value.enumerated() { block[offset + index] = byte }
        }
        func octal(_ value: UInt64, width: Int) -> [UInt8] {
            let digits = String(value, radix: 8)
            return Array((String(repeating: "0", count: max(width - 1 - digits.count, 0)) + digits).utf8) + [0]
        }
        put(header.name, at: 0, width: 100)
        put(octal(UInt64(header.mode), width: 8), at: 100, width: 8)
        put(octal(0, width: 8), at: 108, width: 8)
        put(octal(0, width: 8), at: 116, width: 8)
        if let raw = header.rawSizeField {
            put(raw, at: 124, width: 12)
        } else if header.base256Size {
            var field = [UInt8](repeating: 0, count: 12)
            field[0] = 0x80
            var value = header.size
            for index in stride(from: 11, to: 0, by: -1) {
                field[index] = UInt8(value & 0xff)
                value >>= 8
            }
            put(field, at: 124, width: 12)
        } else {
            put(octal(header.size, width: 12), at: 124, width: 12)
        }
        put(octal(UInt64(max(header.modificationTime, 0)), width: 12), at: 136, width: 12)
        block[156] = header.typeflag
        put(header.linkName, at: 157, width: 100)
        switch header.magic {
        case .ustar: put(Array("ustar\u{0}00".utf8), at: 257, width: 8)
        case .gnu: put(Array("ustar  \u{0}".utf8), at: 257, width: 8)
        case .v7: break
        }
        if header.magic != .v7 {
            put(Array("root".utf8), at: 265, width: 32)
            put(Array("root".utf8), at: 297, width: 32)
        }
        put(header.prefix, at: 345, width: 155)
        for index in 148..<156 { block[index] = UInt8(ascii: " ") }
        let sum = block.reduce(0) { $0 + Int($1) } + header.checksumError
        let digits = String(sum, radix: 8)
        put(Array((String(repeating: "0", count: max(6 - digits.count, 0)) + digits).utf8) + [0, UInt8(ascii: " ")], at: 148, width: 8)
        return block
    }
}
