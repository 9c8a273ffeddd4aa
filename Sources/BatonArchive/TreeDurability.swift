/// How an extraction makes its tree durable before it reports success. Both durable
/// modes give the same guarantee: when `finish()` returns, every file (data, mode, mtime)
/// and every directory of the tree is on disk, so a power loss after that cannot leave
/// the release the agent then switches to torn. They differ in what else is flushed and
/// in what that costs.
public enum TreeDurability: String, Sendable, CaseIterable {
    /// Nothing is synced: the caller syncs, or does not need the tree to survive a crash.
    case none
    /// Each file and directory of the tree is fsynced, and nothing else: the files in the
    /// background while the next ones are written (`FileSyncer`), the directories at the
    /// end. Narrow: another process's dirty data is not waited for. The default.
    case eachFile = "files"
    /// Nothing is synced while the tree is written; at the end one `syncfs(2)` for the file
    /// system that holds it, then an fsync of its root. One journal commit and one disk
    /// cache flush instead of one per file, but it also waits for every other dirty byte
    /// of that file system (an application's data included). For hosts whose release
    /// file system holds little else, or many agents on one disk.
    case fileSystem = "filesystem"
}
