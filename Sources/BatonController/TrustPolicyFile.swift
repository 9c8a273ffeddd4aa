import BatonProtocol
import Foundation

/// Loads a trust policy file from disk; key paths in it are relative to the file.
public enum TrustPolicyFile {
    public static func load(_ path: String) throws(ConfigurationError) -> TrustPolicy {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw ConfigurationError(
                .keyUnreadable, "cannot read the trust policy (does it exist and is it readable?)", file: path)
        }
        let directory = (path as NSString).deletingLastPathComponent
        return try TrustPolicy.parse(yaml: text, file: path) { keyPath in
            let full = keyPath.hasPrefix("/") ? keyPath : (directory.isEmpty ? keyPath : "\(directory)/\(keyPath)")
            guard let data = FileManager.default.contents(atPath: full), let pem = String(data: data, encoding: .utf8) else {
                throw UnreadableKeyFile(path: full)
            }
            return pem
        }
    }
}
