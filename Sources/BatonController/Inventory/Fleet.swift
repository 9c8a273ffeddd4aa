import BatonProtocol
import Foundation

/// The hosts a controller deploys to, from the fleet file (reviewed like code):
/// ```yaml
/// hosts:
///   - id: web-1
///     address: 10.0.0.11:7443
///     environment: production
///     labels: {role: web, zone: eu-1}
/// ```
public struct Fleet: Sendable, Equatable {
    public struct Host: Sendable, Equatable {
        public var id: String
        /// `host:port` of its agent.
        public var address: String
        public var environment: String
        public var labels: [String: String]

        public init(id: String, address: String, environment: String, labels: [String: String] = [:]) {
            self.id = id
            self.address = address
            self.environment = environment
            self.labels = labels
        }

        /// The host part of `address` (without brackets for IPv6).
        public var hostname: String {
            if address.hasPrefix("["), let close = address.firstIndex(of: "]") {
                return String(address[address.index(after: address.startIndex)..<close])
            }
            return String(address[..<(address.lastIndex(of: ":") ?? address.endIndex)])
        }

        public var port: Int { Int(address[address.index(after: address.lastIndex(of: ":")!)...]) ?? 7443 }
    }

    public var hosts: [Host]

    public init(hosts: [Host]) { self.hosts = hosts }

    public static func load(_ path: String) throws(ConfigurationError) -> Fleet {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw ConfigurationError(.keyUnreadable, "cannot read the fleet file (does it exist?)", file: path)
        }
        return try parse(yaml: text, file: path)
    }

    public static func parse(yaml text: String, file: String) throws(ConfigurationError) -> Fleet {
        let root = try YAMLDocument(text: text, file: file).root.mapping()
        try root.allowOnly(["hosts"])
        var hosts: [Host] = []
        for item in try root.require("hosts").list() {
            let entry = try item.mapping()
            try entry.allowOnly(["id", "address", "environment", "labels"])
            let idNode = try entry.require("id")
            let id = try idNode.name()
            if hosts.contains(where: { $0.id == id }) {
                throw idNode.error(.invalidValue, "host '\(id)' is listed twice")
            }
            let addressNode = try entry.require("address")
            let address = try addressNode.string()
            guard Self.isHostPort(address) else {
                throw addressNode.error(.invalidValue, "'\(address)' is not host:port (e.g. 10.0.0.11:7443 or [fd00::1]:7443)")
            }
            var labels: [String: String] = [:]
            if let labelsNode = entry["labels"] {
                for label in try labelsNode.mapping().entries { labels[label.key] = try label.value.string() }
            }
            hosts.append(Host(id: id, address: address, environment: try entry.require("environment").name(), labels: labels))
        }
        if hosts.isEmpty {
            throw root.owner.error(.missingField, "the fleet lists no hosts")
        }
        return Fleet(hosts: hosts)
    }

    /// Every host's environment must be one the trust policy lists: a typo (`stagin`)
    /// would otherwise leave the host silently out of every plan, rollout and drift check.
    public func checkEnvironments(in policy: TrustPolicy, fleetFile: String, policyFile: String) throws(ControllerError) {
        let known = Set(policy.environments.keys)
        let strays = hosts.filter { !known.contains($0.environment) }
        guard !strays.isEmpty else { return }
        let listed = strays.map { "\($0.id) (\($0.environment))" }.joined(separator: ", ")
        throw ControllerError(
            .unknownEnvironment,
            "\(fleetFile): host(s) \(listed) name an environment the trust policy \(policyFile) does not list (it lists \(known.sorted().joined(separator: ", "))); fix the fleet file or add the environment to the policy")
    }

    static func isHostPort(_ text: String) -> Bool {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (1...65_535).contains(port)
        else { return false }
        let host = text[..<colon]
        if host.hasPrefix("[") { return host.hasSuffix("]") && host.count > 2 }
        return !host.isEmpty && !host.contains(":") && !host.contains("/")
    }
}

/// Which hosts a command acts on: an environment, and optionally explicit ids or labels.
public struct HostSelection: Sendable, Equatable {
    public var environment: String?
    public var hostIDs: [String]?
    /// `key=value` pairs that must all match.
    public var selector: [String: String]

    public init(environment: String? = nil, hostIDs: [String]? = nil, selector: [String: String] = [:]) {
        self.environment = environment
        self.hostIDs = hostIDs
        self.selector = selector
    }

    /// Parses `role=web,zone=eu-1`.
    public static func parseSelector(_ text: String) -> [String: String]? {
        var result: [String: String] = [:]
        for pair in text.split(separator: ",") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, !parts[0].isEmpty else { return nil }
            result[String(parts[0]).trimmingCharacters(in: .whitespaces)] = String(parts[1]).trimmingCharacters(in: .whitespaces)
        }
        return result.isEmpty ? nil : result
    }

    /// The selected hosts in fleet order; unknown ids are an error, not silently skipped.
    public func hosts(in fleet: Fleet) throws(ConfigurationError) -> [Fleet.Host] {
        if let ids = hostIDs {
            let unknown = ids.filter { id in !fleet.hosts.contains { $0.id == id } }
            if !unknown.isEmpty {
                throw ConfigurationError(.invalidValue, "unknown host(s): \(unknown.joined(separator: ", ")); check the fleet file")
            }
        }
        return fleet.hosts.filter { host in
            (environment == nil || host.environment == environment)
                && (hostIDs == nil || hostIDs!.contains(host.id))
                && selector.allSatisfy { host.labels[$0.key] == $0.value }
        }
    }
}
