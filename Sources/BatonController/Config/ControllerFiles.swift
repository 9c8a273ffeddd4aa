import BatonProtocol
import Foundation

/// The files a controller configuration names (fleet, trust policy, app files, signing
/// key), each loaded with an error that names the file and, where a parser knows it, the
/// line. Every error thrown is a `CodedError`.
public struct ControllerFiles: Sendable {
    public let configuration: ControllerConfiguration

    public init(_ configuration: ControllerConfiguration) {
        self.configuration = configuration
    }

    /// The fleet, checked against the trust policy's environments when there is one:
    /// before anything is contacted, a host in an environment no agent would accept is
    /// the fleet file's mistake.
    public func fleet() throws -> Fleet {
        let path = try configuration.requireFleet()
        guard FileManager.default.fileExists(atPath: path) else {
            throw ControllerError(.fileNotFound, "the fleet file '\(path)' does not exist")
        }
        let fleet = try Fleet.load(path)
        if let policyPath = configuration.trustPolicyPath, let policy = try self.policy() {
            try fleet.checkEnvironments(in: policy, fleetFile: path, policyFile: policyPath)
        }
        return fleet
    }

    /// The trust policy agents use; nil when none is configured.
    public func policy() throws(ConfigurationError) -> TrustPolicy? {
        guard let path = configuration.trustPolicyPath else { return nil }
        return try TrustPolicyFile.load(path)
    }

    public func app(_ name: String) throws -> AppDefinition {
        try AppDefinition.load(try configuration.appFile(name), for: name)
    }

    /// The controller's signing key (it signs reverts and rollbacks); nil when none is set.
    public func signingKey() throws -> SigningKey? {
        guard let path = configuration.signingKeyPath else { return nil }
        return try Self.signingKey(at: path)
    }

    /// A private signing key file, with errors that name it.
    public static func signingKey(at path: String) throws -> SigningKey {
        guard FileManager.default.fileExists(atPath: path) else {
            throw ControllerError(.fileNotFound, "signing key '\(path)' does not exist")
        }
        guard let data = FileManager.default.contents(atPath: path), let pem = String(data: data, encoding: .utf8) else {
            throw ControllerError(.fileUnreadable, "cannot read signing key '\(path)' (permissions? not UTF-8 text?)")
        }
        do {
            return try SigningKey(pem: pem)
        } catch {
            // The key parser's own code, with the file.
            throw ConfigurationError(error.code, error.message, file: path)
        }
    }
}
