/// The names Baton puts into paths, URIs and metric labels: apps, releases, host ids,
/// environments and controller names. One rule for all of them,
/// `^[a-z0-9][a-z0-9._-]{0,63}$`, so that a name can never inject a path component
/// (`..` cannot start a name and `/` is not allowed) or a label.
public enum Name {
    public static let pattern = "^[a-z0-9][a-z0-9._-]{0,63}$"

    public static func isValid(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...64).contains(bytes.count) else { return false }
        func lowerAlnum(_ b: UInt8) -> Bool { (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) }
        guard lowerAlnum(bytes[0]) else { return false }
        return bytes.dropFirst().allSatisfy { lowerAlnum($0) || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D }
    }
}
