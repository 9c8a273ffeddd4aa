import Foundation

/// The ways a state file is found broken on a real host: cut short by a full disk or an
/// editor, emptied, or replaced by JSON of another shape.
public enum StateCorruption: String, CaseIterable, Sendable, CustomStringConvertible {
    case truncated, empty, wrongShape

    public var description: String { rawValue }

    /// Rewrites the file at `path` in place.
    public func apply(to path: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let broken: Data
        switch self {
        case .truncated: broken = data.prefix(data.count / 2)
        case .empty: broken = Data()
        case .wrongShape: broken = Data(#"{"app": "web", "releases": {"v1": true}, "lastSerial": "two"}"#.utf8)
        }
        try broken.write(to: URL(fileURLWithPath: path))
    }
}

/// Every entry under a directory with its type, mode, size, modification time and (for
/// files and links) content digest or target: two equal snapshots mean nothing in the
/// tree was written, renamed, created or removed.
public enum DirectorySnapshot {
    public static func take(_ root: String) throws -> [String: String] {
        var entries: [String: String] = [:]
        guard let walker = FileManager.default.enumerator(atPath: root) else { return entries }
        while let relative = walker.nextObject() as? String {
            let path = "\(root)/\(relative)"
            var st = stat()
            guard lstat(path, &st) == 0 else { continue }
            var line = "mode=\(String(st.st_mode, radix: 8)) size=\(st.st_size) mtime=\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)"
            switch st.st_mode & S_IFMT {
            case S_IFLNK:
                line += " -> \((try? FileManager.default.destinationOfSymbolicLink(atPath: path)) ?? "?")"
            case S_IFREG:
                let data = FileManager.default.contents(atPath: path) ?? Data()
                line += " bytes=\(data.base64EncodedString().hashValue) len=\(data.count)"
            default:
                break
            }
            entries[relative] = line
        }
        return entries
    }

    /// The entries that differ between two snapshots, for a readable failure.
    public static func difference(_ before: [String: String], _ after: [String: String]) -> [String] {
        Set(before.keys).union(after.keys).sorted().compactMap { key in
            before[key] == after[key] ? nil : "\(key): \(before[key] ?? "absent") => \(after[key] ?? "absent")"
        }
    }
}
