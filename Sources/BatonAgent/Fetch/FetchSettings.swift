import BatonProtocol

/// How the agent fetches an artifact from the manifest's `artifact.url` when it was not
/// uploaded (`fetch:` in `batond.yaml`). Every field has a default; the digest and size
/// in the signed manifest are what is trusted, whatever the server and the transport.
public struct FetchSettings: Sendable, Equatable {
    /// Which certificates an HTTPS artifact server's chain must end in.
    public enum Trust: Sendable, Equatable {
        /// The fleet CA (`tls.ca`): an artifact server inside the fleet, issued by `baton pki`.
        case fleet
        /// The system's root store: a public artifact host.
        case system
        /// The CA certificates in this PEM file: a company CA.
        case file(String)
    }

    /// Default `fleet`.
    public var trust: Trust = .fleet
    /// Plain `http://` URLs. Off by default: the digest protects what is deployed either
    /// way, but over plain HTTP anyone on the path sees which artifact a host fetches and
    /// can feed it garbage that costs a whole download before the digest refuses it.
    public var allowHTTP = false
    /// Fetches running at once on this agent; more deployments wait for a slot. Default 2.
    public var maxConcurrent = 2
    /// The most one fetch may take, every retry and wait included. Default 30m.
    public var deadline: BatonDuration = .minutes(30)
    /// A connection that delivers no byte for this long is dropped and resumed. Default 30s.
    public var idleTimeout: BatonDuration = .seconds(30)
    /// Attempts in a row that bring no new byte before the fetch gives up. Default 5.
    public var attempts = 5
    /// The wait before the first retry; doubled after each attempt without progress, up
    /// to 30 s. Default 1s.
    public var retryDelay: BatonDuration = .seconds(1)
    /// At most one progress event per this interval in the deployment's events. Default 5s.
    public var progressInterval: BatonDuration = .seconds(5)

    public init() {}

    static let keys = [
        "trust", "allowHTTP", "maxConcurrent", "deadline", "idleTimeout", "attempts", "retryDelay", "progressInterval",
    ]

    /// Reads the `fetch:` mapping; `resolve` makes a relative CA path absolute.
    static func parse(_ node: YAMLValue, resolve: (String) -> String) throws(ConfigurationError) -> FetchSettings {
        let mapping = try node.mapping()
        try mapping.allowOnly(keys)
        var settings = FetchSettings()
        if let v = mapping["trust"] {
            switch try v.string() {
            case "fleet": settings.trust = .fleet
            case "system": settings.trust = .system
            case let path where !path.isEmpty: settings.trust = .file(resolve(path))
            default: throw v.error(.invalidValue, "expected fleet, system or the path of a PEM file of CA certificates")
            }
        }
        if let v = mapping["allowHTTP"] { settings.allowHTTP = try v.bool() }
        if let v = mapping["maxConcurrent"] { settings.maxConcurrent = try v.int(in: 1...64) }
        if let v = mapping["attempts"] { settings.attempts = try v.int(in: 1...100) }
        func duration(_ key: String, _ range: ClosedRange<BatonDuration>) throws(ConfigurationError) -> BatonDuration? {
            guard let v = mapping[key] else { return nil }
            let value = try v.duration()
            guard range.contains(value) else { throw v.error(.invalidValue, "'\(value)' is not from \(range.lowerBound) to \(range.upperBound)") }
            return value
        }
        if let v = try duration("deadline", .seconds(1)...BatonDuration.minutes(24 * 60)) { settings.deadline = v }
        if let v = try duration("idleTimeout", BatonDuration(milliseconds: 100)...BatonDuration.minutes(10)) { settings.idleTimeout = v }
        if let v = try duration("retryDelay", BatonDuration(milliseconds: 10)...BatonDuration.minutes(1)) { settings.retryDelay = v }
        if let v = try duration("progressInterval", BatonDuration(milliseconds: 100)...BatonDuration.minutes(10)) {
            settings.progressInterval = v
        }
        return settings
    }
}
