/// An incremental tar parser: fed bytes in chunks of any size, it returns one event at a time
/// and never holds more than one header block plus the current pax or GNU long-name data.
///
/// Call `next(_:)` with the unread part of the current chunk; it returns an event and how many
/// of those bytes it consumed. Call again with the rest until it returns `.needsInput` (which it
/// only does once the chunk is used up), then feed the next chunk. At the end of the input call
/// `finish()`, which fails when the stream stopped before its end-of-archive marker.
///
/// For each member the events are `.entry`, zero or more `.data`, then `.entryEnd`.
/// pax (`x`, `g`) and GNU (`L`, `K`) metadata headers are consumed and applied to the
/// member they describe; they produce no events of their own.
public struct TarReader: Sendable {
    /// What the parser found.
    public enum Event: Sendable, Equatable {
        /// The bytes given are used up; feed more.
        case needsInput
        /// A member header (after pax and GNU long names are applied).
        case entry(TarEntry)
        /// File data of the current member: these indices of the bytes given to `next(_:)`.
        case data(Range<Int>)
        /// The current member's data is complete.
        case entryEnd
        /// Two zero blocks: the archive is complete. Anything after them is ignored.
        case endOfArchive
    }

    /// Bounds on metadata the parser buffers.
    public struct Limits: Sendable, Hashable {
        /// Bytes in one pax extended header.
        public var maxPaxHeaderSize: Int = 1 << 20
        /// Bytes in one GNU long name or long link.
        public var maxLongNameSize: Int = 64 << 10
        public init() {}
    }

    private enum Metadata {
        case paxLocal, paxGlobal, longName, longLink
    }

    private enum State {
        /// Reading a header block; `afterZeroBlock` when the previous block was all zeros.
        case header(afterZeroBlock: Bool)
        /// Data of the current member remains, then `padding` bytes up to the block boundary.
        case entryData(remaining: UInt64, padding: Int)
        /// Data of a metadata header is being collected.
        case metadata(Metadata, remaining: Int, padding: Int)
        /// Skipping to the next block boundary.
        case padding(Int)
        /// After the end-of-archive marker.
        case ended
    }

    private let limits: Limits
    private var state = State.header(afterZeroBlock: false)
    private var block = [UInt8](repeating: 0, count: TarHeader.blockSize)
    private var blockFill = 0
    private var blockOffset: UInt64 = 0
    private var metadataBuffer: [UInt8] = []
    private var globalPax = PaxHeader()
    private var localPax: PaxHeader?
    private var longName: [UInt8]?
    private var longLink: [UInt8]?

    /// Bytes consumed so far.
    public private(set) var position: UInt64 = 0
    /// Bytes seen after the end-of-archive marker (record padding, usually zeros).
    public private(set) var trailingBytes: UInt64 = 0

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// True once the end-of-archive marker was read.
    public var isAtEnd: Bool {
        if case .ended = state { return true }
        return false
    }

    /// The next event from `input`, the unread part of the current chunk.
    public mutating func next(_ input: UnsafeRawBufferPointer) throws(ExtractionError) -> (event: Event, consumed: Int) {
        let result = try step(input)
        position += UInt64(result.consumed)
        return result
    }

    /// Checks that the stream ended where it may: after the end-of-archive marker.
    public func finish() throws(ExtractionError) {
        guard !isAtEnd else { return }
        let situation: String
        switch state {
        case .entryData: situation = "in the middle of a file's data"
        case .metadata: situation = "in the middle of an extended header"
        case .header(afterZeroBlock: true): situation = "after a single zero block"
        default: situation = "before its end-of-archive marker"
        }
        throw ExtractionError(
            .truncatedArchive,
            "the archive ends \(situation) (after \(position) bytes); the upload or the artifact is incomplete, rebuild or upload it again"
        )
    }

    private mutating func step(_ input: UnsafeRawBufferPointer) throws(ExtractionError) -> (event: Event, consumed: Int) {
        var used = 0
        while true {
            let available = input.count - used
            switch state {
            case .ended:
                trailingBytes += UInt64(available)
                return (.needsInput, input.count)

            case .entryData(let remaining, let padding):
                if remaining == 0 {
                    state = .padding(padding)
                    return (.entryEnd, used)
                }
                guard available > 0 else { return (.needsInput, used) }
                let count = Int(min(UInt64(available), remaining))
                state = .entryData(remaining: remaining - UInt64(count), padding: padding)
                return (.data(used..<(used + count)), used + count)

            case .padding(let remaining):
                if remaining == 0 {
                    state = .header(afterZeroBlock: false)
                    continue
                }
                guard available > 0 else { return (.needsInput, used) }
                let count = min(available, remaining)
                used += count
                state = .padding(remaining - count)

            case .metadata(let kind, let remaining, let padding):
                if remaining == 0 {
                    try finishMetadata(kind)
                    state = .padding(padding)
                    continue
                }
                guard available > 0 else { return (.needsInput, used) }
                let count = min(available, remaining)
                metadataBuffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[used..<(used + count)]))
                used += count
                state = .metadata(kind, remaining: remaining - count, padding: padding)

            case .header(let afterZeroBlock):
                guard available > 0 else { return (.needsInput, used) }
                if blockFill == 0 { blockOffset = position + UInt64(used) }
                let count = min(available, TarHeader.blockSize - blockFill)
                block.withUnsafeMutableBytes { target in
                    UnsafeMutableRawBufferPointer(rebasing: target[blockFill..<(blockFill + count)])
                        .copyMemory(from: UnsafeRawBufferPointer(rebasing: input[used..<(used + count)]))
                }
                blockFill += count
                used += count
                guard blockFill == TarHeader.blockSize else { return (.needsInput, used) }
                blockFill = 0
                if let event = try headerBlock(afterZeroBlock: afterZeroBlock) { return (event, used) }
            }
        }
    }

    /// Handles a complete header block; returns an event, or nil when there is none yet.
    private mutating func headerBlock(afterZeroBlock: Bool) throws(ExtractionError) -> Event? {
        let isZero = !block.contains { $0 != 0 }
        if afterZeroBlock {
            // GNU tar can skip lone zero blocks (-i); we do not, so a zero block in the middle
            // of an archive is damage, not a way to hide members from other readers.
            guard isZero else { throw corrupt("follows a single zero block") }
            state = .ended
            return .endOfArchive
        }
        if isZero {
            guard localPax == nil, longName == nil, longLink == nil else {
                throw corrupt("is the end of the archive, but an extended header before it has no member")
            }
            state = .header(afterZeroBlock: true)
            return nil
        }

        let header = try TarHeader(block: block, offset: blockOffset)
        switch header.typeflag {
        case TarHeader.paxLocal, TarHeader.paxGlobal:
            let isLocal = header.typeflag == TarHeader.paxLocal
            guard header.size <= UInt64(limits.maxPaxHeaderSize) else {
                throw ExtractionError(
                    .badPaxHeader,
                    "pax extended header at byte \(blockOffset) is \(header.size) bytes, more than the \(limits.maxPaxHeaderSize) allowed; rebuild the archive"
                )
            }
            // Two headers of one kind for one member would let tar implementations disagree
            // on which applies; refuse instead of picking one.
            if isLocal, localPax != nil { throw corrupt("is a second pax header for the same member") }
            try beginMetadata(isLocal ? .paxLocal : .paxGlobal, size: Int(header.size))
            return nil
        case TarHeader.gnuLongName, TarHeader.gnuLongLink:
            let isName = header.typeflag == TarHeader.gnuLongName
            guard header.size <= UInt64(limits.maxLongNameSize) else {
                throw ExtractionError(
                    .nameTooLong,
                    "GNU long \(isName ? "name" : "link") header at byte \(blockOffset) is \(header.size) bytes, more than the \(limits.maxLongNameSize) allowed; rebuild the archive with shorter names"
                )
            }
            if isName ? longName != nil : longLink != nil {
                throw corrupt("is a second GNU long \(isName ? "name" : "link") for the same member")
            }
            try beginMetadata(isName ? .longName : .longLink, size: Int(header.size))
            return nil
        default:
            let entry = try makeEntry(header)
            localPax = nil
            longName = nil
            longLink = nil
            let size = TarEntry.carriesData(entry.kind) ? entry.size : 0
            state = .entryData(remaining: size, padding: Self.padding(size))
            return .entry(entry)
        }
    }

    private mutating func beginMetadata(_ kind: Metadata, size: Int) throws(ExtractionError) {
        metadataBuffer.removeAll(keepingCapacity: true)
        metadataBuffer.reserveCapacity(size)
        state = .metadata(kind, remaining: size, padding: Self.padding(UInt64(size)))
    }

    private mutating func finishMetadata(_ kind: Metadata) throws(ExtractionError) {
        switch kind {
        case .paxLocal:
            localPax = try PaxHeader(parsing: metadataBuffer, offset: blockOffset)
        case .paxGlobal:
            globalPax.merge(try PaxHeader(parsing: metadataBuffer, offset: blockOffset))
        case .longName, .longLink:
            // The name is NUL-terminated; trailing NULs go, a NUL inside stays so that the
            // policy refuses the name instead of silently cutting it.
            var name = metadataBuffer
            while name.last == 0 { name.removeLast() }
            if kind == .longName { longName = name } else { longLink = name }
        }
        metadataBuffer.removeAll(keepingCapacity: metadataBuffer.capacity <= 64 << 10)
    }

    private func makeEntry(_ header: TarHeader) throws(ExtractionError) -> TarEntry {
        var pax = globalPax
        if let localPax {
            if longName != nil, localPax["path"]?.isEmpty == false {
                throw badPax("sets a path and a GNU long name for the same member")
            }
            if longLink != nil, localPax["linkpath"]?.isEmpty == false {
                throw badPax("sets a linkpath and a GNU long link for the same member")
            }
            pax.merge(localPax)
        }
        // A per-member header wins over a global one, GNU long names over the ustar fields.
        let localPath = localPax?["path"].flatMap { $0.isEmpty ? nil : $0 }
        let localLink = localPax?["linkpath"].flatMap { $0.isEmpty ? nil : $0 }
        let name = localPath ?? longName ?? pax["path"] ?? header.name
        let linkName = localLink ?? longLink ?? pax["linkpath"] ?? header.linkName

        var size = header.size
        if let value = pax["size"] {
            guard let parsed = PaxHeader.decimal(value) else { throw badPax("has an invalid size") }
            size = parsed
        }
        var mtime = header.modificationTime
        if let value = pax["mtime"] {
            guard let parsed = PaxHeader.seconds(value) else { throw badPax("has an invalid mtime") }
            mtime = parsed
        }

        let kind: TarEntry.Kind
        switch header.typeflag {
        case UInt8(ascii: "0"), UInt8(ascii: "7"): kind = .regularFile
        // Before POSIX, a directory was a regular entry whose name ends in a slash.
        case 0: kind = name.last == UInt8(ascii: "/") ? .directory : .regularFile
        case UInt8(ascii: "1"): kind = .hardLink
        case UInt8(ascii: "2"): kind = .symbolicLink
        case UInt8(ascii: "3"): kind = .characterDevice
        case UInt8(ascii: "4"): kind = .blockDevice
        case UInt8(ascii: "5"): kind = .directory
        case UInt8(ascii: "6"): kind = .fifo
        default: kind = .unsupported(typeflag: header.typeflag)
        }
        return TarEntry(
            kind: kind, name: name, linkName: linkName,
            size: TarEntry.carriesData(kind) ? size : 0,
            mode: header.mode, modificationTime: mtime, isSparse: pax.marksSparse)
    }

    private func corrupt(_ what: String) -> ExtractionError {
        ExtractionError(
            .corruptHeader,
            "tar header at byte \(blockOffset) \(what); the archive is damaged or crafted, rebuild it")
    }

    private func badPax(_ what: String) -> ExtractionError {
        ExtractionError(
            .badPaxHeader,
            "pax extended header before byte \(blockOffset) \(what); the archive is damaged or crafted, rebuild it")
    }

    private static func padding(_ size: UInt64) -> Int {
        Int((UInt64(TarHeader.blockSize) - size % UInt64(TarHeader.blockSize)) % UInt64(TarHeader.blockSize))
    }
}
