/// What the extraction has created so far, by normalised path: the source of truth for
/// duplicate names, parents that are not directories, hard-link targets and symlink resolution.
/// The file system is never consulted for these decisions.
///
/// Invariant: the tree is closed under parents, and every parent is a directory (nodes are
/// only added below directories and never replaced, except an implicit directory becoming
/// an explicit one). So the nearest recorded ancestor of a path decides for all of them.
struct ReleaseTree {
    enum Node: Equatable {
        /// Created because a later member needed it as a parent; an explicit entry may follow once.
        case implicitDirectory
        case directory
        /// A regular file (or a hard link to one: the same inode).
        case file
        case symlink(target: [UInt8])

        var isDirectory: Bool { self == .directory || self == .implicitDirectory }
    }

    /// How a symlink target resolves.
    enum Resolution: Equatable {
        case inside
        case escapes
        /// More than 40 symlinks on the way (the kernel's limit), or absurdly long.
        case loops
    }

    private(set) var nodes: [[UInt8]: Node] = [[]: .implicitDirectory]
    /// Every symlink created, to check again once the whole tree is known.
    private(set) var symlinks: [ArchivePath] = []

    subscript(path: ArchivePath) -> Node? { nodes[path.bytes] }

    /// The nearest recorded ancestor of `path` (the root at worst).
    func nearestAncestor(of path: ArchivePath) -> (path: ArchivePath, node: Node) {
        // Archives list parents before children, so this is almost always one lookup.
        for depth in stride(from: path.depth - 1, to: 0, by: -1) {
            let ancestor = path.ancestor(depth: depth)
            if let node = nodes[ancestor.bytes] { return (ancestor, node) }
        }
        return (.root, nodes[[]] ?? .implicitDirectory)
    }

    /// Records the ancestors of `path` deeper than `depth` (the nearest recorded one) as
    /// implicit directories; returns how many.
    mutating func addAncestors(of path: ArchivePath, below depth: Int) -> Int {
        for level in (depth + 1)..<max(path.depth, depth + 1) {
            nodes[path.ancestor(depth: level).bytes] = .implicitDirectory
        }
        return max(path.depth - 1 - depth, 0)
    }

    mutating func add(_ path: ArchivePath, _ node: Node) {
        nodes[path.bytes] = node
        if case .symlink = node { symlinks.append(path) }
    }

    /// Resolves `target` as the kernel would from the directory holding `link`, following the
    /// symlinks of this tree. Components the tree does not know are taken as directories: if
    /// they never appear, the kernel fails the lookup, which is no escape either.
    ///
    /// Lexical resolution alone is not enough: with `d -> .` in the tree, `d/../..` from the
    /// root looks like the root lexically but leaves it for real.
    func resolve(target: [UInt8], of link: ArchivePath) -> Resolution {
        if target.first == ArchivePath.slash { return .escapes }
        var stack = link.parent.components
        var pending = Array(ArchivePath.split(target).reversed())
        // How many leading components of `stack` are nodes of the tree. Below a component the
        // tree does not know there can be no symlink, so no lookup is needed until `..` climbs
        // back; this keeps every lookup key within the name limits.
        var known = stack.count
        var hops = 0
        var steps = 0
        while let component = pending.popLast() {
            steps += 1
            guard steps <= 1 << 16 else { return .loops }
            if ArchivePath.isDotOrEmpty(component) { continue }
            if ArchivePath.isDotDot(component) {
                guard !stack.isEmpty else { return .escapes }
                stack.removeLast()
                known = min(known, stack.count)
                continue
            }
            stack.append(component)
            guard known == stack.count - 1, let node = nodes[ArchivePath.join(stack[...])] else { continue }
            known = stack.count
            guard case .symlink(let next) = node else { continue }
            hops += 1
            guard hops <= 40 else { return .loops }
            stack.removeLast()
            known = stack.count
            if next.first == ArchivePath.slash { return .escapes }
            pending.append(contentsOf: ArchivePath.split(next).reversed())
        }
        return .inside
    }
}
