/// A member name after normalisation: relative, without `.` or empty components, checked
/// against the name rules. The root of the release is the path with no components.
struct ArchivePath: Hashable {
    static let slash = UInt8(ascii: "/")
    static let dot = UInt8(ascii: ".")

    let components: [[UInt8]]
    /// The path as `a/b/c` bytes: the key for maps, computed once.
    let bytes: [UInt8]

    init(components: [[UInt8]]) {
        self.components = components
        self.bytes = Self.join(components[...])
    }

    static let root = ArchivePath(components: [])

    var isRoot: Bool { components.isEmpty }
    var depth: Int { components.count }
    var parent: ArchivePath { ancestor(depth: max(depth - 1, 0)) }
    var leaf: [UInt8] { components.last ?? [] }

    /// The ancestor with `depth` components (the root for 0).
    func ancestor(depth: Int) -> ArchivePath { ArchivePath(components: Array(components.prefix(depth))) }

    static func == (lhs: ArchivePath, rhs: ArchivePath) -> Bool { lhs.bytes == rhs.bytes }
    func hash(into hasher: inout Hasher) { hasher.combine(bytes) }

    static func join(_ components: ArraySlice<[UInt8]>) -> [UInt8] {
        var result: [UInt8] = []
        for (index, component) in zip(components.indices, components) {
            if index != components.startIndex { result.append(slash) }
            result += component
        }
        return result
    }

    /// Splits on `/`, keeping empty and `.` components (callers decide what they mean).
    static func split(_ bytes: [UInt8]) -> [[UInt8]] {
        bytes.split(separator: slash, omittingEmptySubsequences: false).map(Array.init)
    }

    static func isDotDot(_ component: [UInt8]) -> Bool { component == [dot, dot] }
    static func isDotOrEmpty(_ component: [UInt8]) -> Bool { component.isEmpty || component == [dot] }

    /// Normalises a member name: drops `./` prefixes, `.` components, doubled and trailing
    /// slashes. Refuses NUL bytes, empty names, absolute names, any `..`, and names over the limits.
    /// `code` is reported for violations (hard-link targets use `hardlink_invalid`).
    static func normalise(
        _ name: [UInt8], limits: ExtractionLimits, entry: [UInt8], what: String = "name",
        code override: ExtractionError.Code? = nil
    ) throws(ExtractionError) -> ArchivePath {
        func refuse(_ code: ExtractionError.Code, _ reason: String) -> ExtractionError {
            .refused(override ?? code, entry, reason)
        }
        guard !name.contains(0) else { throw refuse(.nulInName, "has a NUL byte in its \(what)") }
        guard !name.isEmpty else { throw refuse(.emptyName, "has an empty \(what)") }
        guard name.first != slash else { throw refuse(.absolutePath, "has an absolute \(what)") }
        var components: [[UInt8]] = []
        for component in split(name) where !isDotOrEmpty(component) {
            guard !isDotDot(component) else { throw refuse(.pathTraversal, "has a '..' component in its \(what)") }
            guard component.count <= limits.maxComponentLength else {
                throw refuse(
                    .nameTooLong,
                    "has a \(what) component of \(component.count) bytes, more than the \(limits.maxComponentLength) allowed")
            }
            components.append(component)
        }
        let path = ArchivePath(components: components)
        let length = components.reduce(0) { $0 + $1.count } + max(components.count - 1, 0)
        guard length <= limits.maxNameLength else {
            throw refuse(.nameTooLong, "has a \(what) of \(length) bytes, more than the \(limits.maxNameLength) allowed")
        }
        guard components.count <= limits.maxDepth else {
            throw refuse(.pathTooDeep, "has \(components.count) levels in its \(what), more than the \(limits.maxDepth) allowed")
        }
        return path
    }
}
