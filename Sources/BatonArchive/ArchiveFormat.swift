/// How an artifact is packed.
public enum ArchiveFormat: String, Sendable, Hashable, CaseIterable {
    /// An uncompressed tar stream (ustar, GNU or pax).
    case tar
    /// A tar stream compressed with gzip; concatenated gzip members are accepted.
    case tarGz = "tar.gz"
}
