/// Path arithmetic on plain strings, with NSString's rules (FoundationEssentials, which
/// the agent uses to stay small, has no NSString): trailing slashes do not count, and
/// the directory of a bare name is "".
enum PathName {
    /// `/a/b/c` → `/a/b`; `/a` → `/`; `c` → ``.
    static func directory(of path: String) -> String {
        let trimmed = withoutTrailingSlashes(path)
        guard let slash = trimmed.lastIndex(of: "/") else { return "" }
        if slash == trimmed.startIndex { return "/" }
        return String(trimmed[..<slash])
    }

    /// `/a/b/c` → `c`; `/a/b/` → `b`; `/` → `/`.
    static func lastComponent(of path: String) -> String {
        let trimmed = withoutTrailingSlashes(path)
        if trimmed == "/" { return "/" }
        guard let slash = trimmed.lastIndex(of: "/") else { return String(trimmed) }
        return String(trimmed[trimmed.index(after: slash)...])
    }

    private static func withoutTrailingSlashes(_ path: String) -> Substring {
        var trimmed = Substring(path)
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        return trimmed
    }
}
