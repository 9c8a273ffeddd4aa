import BatonProtocol
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension AgentConfiguration {
    /// Reads the trust policy this configuration names; key paths in it are relative to
    /// the policy file.
    public func loadTrustPolicy() throws(ConfigurationError) -> TrustPolicy {
        let path = trustPolicyPath
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw ConfigurationError(.keyUnreadable, "cannot read the trust policy (does it exist?)", file: path)
        }
        try FilePermissions.check(path, what: "trust policy", .trusted)
        let directory = PathName.directory(of: path)
        return try TrustPolicy.parse(yaml: text, file: path) { keyPath in
            let full = keyPath.hasPrefix("/") || directory.isEmpty ? keyPath : "\(directory)/\(keyPath)"
            guard let data = FileManager.default.contents(atPath: full), let pem = String(data: data, encoding: .utf8) else {
                throw UnreadableKeyFile(path: full)
            }
            try FilePermissions.check(full, what: "trusted public key", .trusted)
            return pem
        }
    }
}
