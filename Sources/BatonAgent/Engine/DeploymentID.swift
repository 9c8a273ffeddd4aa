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
}
