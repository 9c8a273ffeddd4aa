/// One archive member as the tar stream describes it, with pax and GNU long names and
/// pax sizes already applied. Nothing here has been checked against any policy.
public struct TarEntry: Sendable, Hashable {
    /// The member type, from the header's typeflag.
    public enum Kind: Sendable, Hashable {
        /// `0`, NUL (old tars) and `7` (contiguous file).
        case regularFile
        /// `1`: a hard link to `linkName`, an earlier member.
        case hardLink
        /// `2`: a symbolic link with target `linkName`.
        case symbolicLink
        /// `3`.
        case characterDevice
        /// `4`.
        case blockDevice
        /// `5`, or an old-style regular entry whose name ends in `/`.
        case directory
        /// `6`.
        case fifo
        /// Any other typeflag (GNU sparse `S`, volume label `V`, dump directory `D`, ...).
        case unsupported(typeflag: UInt8)
    }

    public var kind: Kind
    /// The member name, raw bytes, as stored (not normalised).
    public var name: [UInt8]
    /// The link target for hard and symbolic links, raw bytes.
    public var linkName: [UInt8]
    /// Bytes of data that follow this header in the stream: the file size for regular files
    /// (and unsupported types, whose data is skipped), 0 for everything else.
    public var size: UInt64
    /// Permission bits as stored (`0o7777` at most).
    public var mode: UInt32
    /// Seconds since the epoch.
    public var modificationTime: Int64
    /// True when a pax header marks the file as GNU sparse: its data is a sparse map, not the content.
    public var isSparse: Bool

    public init(
        kind: Kind, name: [UInt8], linkName: [UInt8] = [], size: UInt64 = 0, mode: UInt32 = 0o644,
        modificationTime: Int64 = 0, isSparse: Bool = false
    ) {
        self.kind = kind
        self.name = name
        self.linkName = linkName
        self.size = size
        self.mode = mode
        self.modificationTime = modificationTime
        self.isSparse = isSparse
    }

    /// The name for messages (invalid UTF-8 replaced).
    public var displayName: String { ExtractionError.displayName(name) }

    /// Whether data blocks follow a header of this kind. Like GNU tar and Python's tarfile,
    /// only regular files and unknown types carry data; a size on a directory or link is ignored.
    static func carriesData(_ kind: Kind) -> Bool {
        switch kind {
        case .regularFile, .unsupported: return true
        case .hardLink, .symbolicLink, .characterDevice, .blockDevice, .directory, .fifo: return false
        }
    }
}
