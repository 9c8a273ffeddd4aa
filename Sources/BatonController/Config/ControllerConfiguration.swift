import BatonProtocol
import Foundation

/// Where the controller finds its fleet, apps, trust policy, state and credentials.
///
/// Read from the controller configuration file (`baton.yaml`; `--config`, `BATON_CONFIG`),
/// then environment variables, then flags, each overriding the one before. The
/// credentials never come from the fleet file: that file is reviewed and shared, keys
/// are not. Relative paths in the file are relative to the file.
/// ```yaml
/// fleet: fleet.yaml
/// apps: apps                  # holds <app>.yaml (or <app>.app.yaml) app files
/// trustPolicy: trust-policy.yaml
/// stateDir: .baton
/// tls: {certificate: pki/ci.pem, key: pki/ci.key, ca: pki/ca.pem}
/// signingKey: keys/ci.key     # signs reverts (and `baton deploy`)
/// notifications:              # webhooks on rollout milestones (NotificationHook)
///   - {url: https://hooks.example.com/T0/B0/x, format: slack, minSeverity: warning}
/// history: {postgres: "postgres://baton@db:5432/baton", passwordFile: db-password}  # default: sqlite
/// ```
public struct ControllerConfiguration: Sendable, Equatable {
    public var fleetPath: String?
    public var appsDirectory: String?
    public var trustPolicyPath: String?
    public var stateDirectory: String
    public var certificatePath: String?
    public var keyPath: String?
    public var caPath: String?
    public var signingKeyPath: String?
    /// Webhooks told of rollout milestones; only from the file.
    public var notifications: [NotificationHook] = []
    /// Where the history and the locks are (`history:`, `BATON_HISTORY_POSTGRES`).
    public var history: HistoryConfiguration = .sqlite
    /// A rollout lock's lease (`history: {lease: 20s}`, `BATON_LOCK_LEASE`); nil: RolloutLease's default.
    public var lockLease: TimeInterval?
    /// The file the values came from, if any.
    public var file: String?

    /// Values given on the command line (they win over everything).
    public struct Overrides: Sendable, Equatable {
        public var config: String?
        public var fleet: String?
        public var apps: String?
        public var trustPolicy: String?
        public var stateDir: String?
        public var certificate: String?
        public var key: String?
        public var ca: String?
        public var signingKey: String?
        public init() {}
    }

    /// The environment variables read, in the README.
    public static let environmentVariables = [
        "BATON_CONFIG", "BATON_FLEET", "BATON_APPS", "BATON_TRUST_POLICY", "BATON_STATE_DIR",
        "BATON_TLS_CERT", "BATON_TLS_KEY", "BATON_TLS_CA", "BATON_SIGNING_KEY",
        "BATON_HISTORY_POSTGRES", "BATON_LOCK_LEASE",
    ]

    public static func resolve(
        _ overrides: Overrides, environment: [String: String] = ProcessInfo.processInfo.environment,
        workingDirectory: String = FileManager.default.currentDirectoryPath
    ) throws(ConfigurationError) -> ControllerConfiguration {
        func absolute(_ path: String, base: String) -> String {
            path.hasPrefix("/") ? path : (base as NSString).appendingPathComponent(path)
        }
        var configuration = ControllerConfiguration(stateDirectory: defaultStateDirectory(environment: environment))
        let explicit = overrides.config ?? environment["BATON_CONFIG"]
        let configPath = explicit.map { absolute($0, base: workingDirectory) }
            ?? [absolute("baton.yaml", base: workingDirectory)].first { FileManager.default.fileExists(atPath: $0) }
        if let configPath {
            configuration = try load(configPath, stateDefault: configuration.stateDirectory)
        }
        func pick(_ flag: String?, _ variable: String, _ current: String?) -> String? {
            if let flag { return absolute(flag, base: workingDirectory) }
            if let value = environment[variable], !value.isEmpty { return absolute(value, base: workingDirectory) }
            return current
        }
        configuration.fleetPath = pick(overrides.fleet, "BATON_FLEET", configuration.fleetPath)
        configuration.appsDirectory = pick(overrides.apps, "BATON_APPS", configuration.appsDirectory)
        configuration.trustPolicyPath = pick(overrides.trustPolicy, "BATON_TRUST_POLICY", configuration.trustPolicyPath)
        configuration.stateDirectory = pick(overrides.stateDir, "BATON_STATE_DIR", configuration.stateDirectory)!
        configuration.certificatePath = pick(overrides.certificate, "BATON_TLS_CERT", configuration.certificatePath)
        configuration.keyPath = pick(overrides.key, "BATON_TLS_KEY", configuration.keyPath)
        configuration.caPath = pick(overrides.ca, "BATON_TLS_CA", configuration.caPath)
        configuration.signingKeyPath = pick(overrides.signingKey, "BATON_SIGNING_KEY", configuration.signingKeyPath)
        configuration.history = try configuration.history.overridden(by: environment)
        if let lease = environment["BATON_LOCK_LEASE"], !lease.isEmpty {
            configuration.lockLease = try RolloutLease.parse(lease, what: "BATON_LOCK_LEASE")
        }
        return configuration
    }

    /// `$XDG_STATE_HOME/baton`, else `~/.local/state/baton`.
    public static func defaultStateDirectory(environment: [String: String]) -> String {
        if let xdg = environment["XDG_STATE_HOME"], xdg.hasPrefix("/") { return "\(xdg)/baton" }
        let home = environment["HOME"] ?? NSHomeDirectory()
        return "\(home)/.local/state/baton"
    }

    public static func load(_ path: String, stateDefault: String) throws(ConfigurationError) -> ControllerConfiguration {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw ConfigurationError(.keyUnreadable, "cannot read the controller configuration (does it exist?)", file: path)
        }
        let base = (path as NSString).deletingLastPathComponent
        func absolute(_ value: String) -> String { value.hasPrefix("/") ? value : (base as NSString).appendingPathComponent(value) }
        let root = try YAMLDocument(text: text, file: path).root.mapping()
        try root.allowOnly(["fleet", "apps", "trustPolicy", "stateDir", "tls", "signingKey", "notifications", "history"])
        var configuration = ControllerConfiguration(stateDirectory: stateDefault, file: path)
        configuration.fleetPath = try root["fleet"].map { node throws(ConfigurationError) in absolute(try node.string()) }
        configuration.appsDirectory = try root["apps"].map { node throws(ConfigurationError) in absolute(try node.string()) }
        configuration.trustPolicyPath = try root["trustPolicy"].map { node throws(ConfigurationError) in absolute(try node.string()) }
        if let node = root["stateDir"] { configuration.stateDirectory = absolute(try node.string()) }
        configuration.signingKeyPath = try root["signingKey"].map { node throws(ConfigurationError) in absolute(try node.string()) }
        if let node = root["notifications"] { configuration.notifications = try NotificationHook.parseList(node, base: base) }
        if let node = root["history"] {
            configuration.history = try HistoryConfiguration.parse(node, file: path, absolute: absolute)
            configuration.lockLease = try RolloutLease.parse(history: node, file: path)
        }
        if let tlsNode = root["tls"] {
            let tls = try tlsNode.mapping()
            try tls.allowOnly(["certificate", "key", "ca"])
            configuration.certificatePath = absolute(try tls.require("certificate").string())
            configuration.keyPath = absolute(try tls.require("key").string())
            configuration.caPath = absolute(try tls.require("ca").string())
        }
        return configuration
    }

    public init(stateDirectory: String, file: String? = nil) {
        self.stateDirectory = stateDirectory
        self.file = file
    }

    // MARK: What commands need, with errors that say how to provide it

    public func requireFleet() throws(ControllerError) -> String {
        guard let fleetPath else {
            throw ControllerError(.configurationInvalid, "no fleet file: set `fleet:` in baton.yaml, BATON_FLEET, or --fleet")
        }
        return fleetPath
    }

    public func requireCredentials() throws(ControllerError) -> ControllerCredentials {
        guard let certificatePath, let keyPath, let caPath else {
            let missing = [("certificate", certificatePath, "BATON_TLS_CERT", "--cert"), ("key", keyPath, "BATON_TLS_KEY", "--tls-key"),
                           ("ca", caPath, "BATON_TLS_CA", "--ca")]
                .filter { $0.1 == nil }.map { "\($0.0) (tls.\($0.0) in baton.yaml, \($0.2) or \($0.3))" }
            throw ControllerError(.credentialsMissing, "the controller's TLS credentials are not set: \(missing.joined(separator: ", "))")
        }
        return ControllerCredentials(certificatePath: certificatePath, keyPath: keyPath, caPath: caPath)
    }

    /// The app file for `app`: `<apps>/<app>.yaml` or `<apps>/<app>.app.yaml`.
    public func appFile(_ app: String) throws(ControllerError) -> String {
        // Before any path is built from it: `../evil` would read apps/../evil.yaml.
        try ControllerError.checkName(app, "app")
        guard let appsDirectory else {
            throw ControllerError(.appUnknown, "no apps directory: set `apps:` in baton.yaml, BATON_APPS, or --apps")
        }
        for candidate in ["\(app).yaml", "\(app).app.yaml"] {
            let path = (appsDirectory as NSString).appendingPathComponent(candidate)
            if FileManager.default.fileExists(atPath: path) { return path }
        }
        throw ControllerError(.appUnknown, "no app file for '\(app)' in \(appsDirectory) (expected \(app).yaml or \(app).app.yaml)")
    }
}
