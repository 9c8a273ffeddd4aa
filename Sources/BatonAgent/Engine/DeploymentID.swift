import BatonProtocol

/// Deployment ids are `<app>-<serial>`: unique on a host because serials only grow per
/// app, readable in logs, and safe as file names.
enum DeploymentID {
    static func make(app: String, serial: UInt64) -> String { "\(app)-\(serial)" }

    static func isValid(_ id: String) -> Bool {
        let bytes = Array(id.utf8)
        guard (1...96).contains(bytes.count) else { return false }
        let first = bytes[0]
        guard (first >= 0x61 && first <= 0x7A) || (first >= 0x30 && first <= 0x39) else { return false }
        return bytes.allSatisfy {
            ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D
        }
    }

    /// The app part of an id (`web-api-42` → `web-api`): what a record belongs to even
    /// when its contents cannot be read.
    static func app(of id: String) -> String? {
        guard let dash = id.lastIndex(of: "-"), serial(of: id) != nil else { return nil }
        let app = String(id[..<dash])
        return Name.isValid(app) ? app : nil
    }

    static func serial(of id: String) -> UInt64? {
        guard let dash = id.lastIndex(of: "-") else { return nil }
        return UInt64(id[id.index(after: dash)...])
    }
}
