/// What an extraction created.
public struct ExtractionSummary: Sendable, Hashable {
    /// Archive members processed (including a `./` entry for the root).
    public var entries: Int = 0
    /// Regular files written (hard links not included).
    public var files: Int = 0
    /// Directories, whether listed in the archive or created as parents.
    public var directories: Int = 0
    /// Symbolic links created.
    public var symlinks: Int = 0
    /// Hard links created.
    public var hardLinks: Int = 0
    /// Bytes of file data written.
    public var bytes: UInt64 = 0
    /// How the tree was made durable: `.eachFile`, `.fileSystem`, or `.none` (not asked,
    /// or a file system that lives in memory). Never `.automatic`: that chooses one of the two.
    public var synced: TreeDurability = .none

    public init() {}
}
