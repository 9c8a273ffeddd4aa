/// Bounds on what one archive may create. Every field has a default; the agent sets the
/// byte and entry limits from its configuration and the manifest.
public struct ExtractionLimits: Sendable, Hashable {
    /// Members in the archive (files, directories, links; pax and GNU metadata headers do not
    /// count), plus directories created only as parents of members.
    public var maxEntries: Int = 100_000
    /// Bytes of file data in all regular files together.
    public var maxTotalBytes: UInt64 = 4 << 30
    /// Bytes of file data in any one regular file (by default only `maxTotalBytes` applies).
    public var maxFileBytes: UInt64 = .max
    /// Bytes in a normalised member name or a link target (Linux `PATH_MAX`).
    public var maxNameLength: Int = 4096
    /// Bytes in one component of a member name (Linux `NAME_MAX`).
    public var maxComponentLength: Int = 255
    /// Components in a member name.
    public var maxDepth: Int = 64

    /// The defaults.
    public init() {}

    /// The defaults.
    public static let `default` = ExtractionLimits()
}
