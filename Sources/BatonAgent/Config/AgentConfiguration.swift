import BatonArchive
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

/// Everything `batond` needs to know about its host, read from `batond.yaml`
/// (documented in `agent/batond.example.yaml`). Every field has a default except the
/// host's identity and the trust policy.
public struct AgentConfiguration: Sendable, Equatable {
    public var hostID: String
    public var environment: String
    public var labels: [String: String]
    /// Root of releases, artifacts and state. Default `/var/lib/baton`.
    public var dataDirectory: String
    /// The HTTPS API. Default `0.0.0.0:7443`.
    public var listen: ListenAddress
    /// Prometheus metrics; nil (the default) serves none. Off unless asked for, so a
    /// second agent on one machine (a test fleet, a staging box) does not die on a
    /// fixed port the first one holds.
    public var metricsListen: ListenAddress?
    public var tls: TLSFiles?
    /// Path of the trust policy file.
    public var trustPolicyPath: String
    public var limits: Limits
    /// Fetching artifacts from the manifest's `artifact.url` (`fetch:`).
    public var fetch = FetchSettings()
    /// How an unpacked release is made durable before anything can switch to it
    /// (`releaseSync:`): `auto` (the default) makes one `syncfs(2)` of their file system
    /// when little else is dirty, else fsyncs each file and directory; `files` always does
    /// the latter, `filesystem` always the former. The guarantee is the same
    /// (docs/durability.md).
    public var releaseSync: TreeDurability = .automatic

    public struct TLSFiles: Sendable, Equatable {
        public var certificate: String
        public var privateKey: String
        public var ca: String

        public init(certificate: String, privateKey: String, ca: String) {
            self.certificate = certificate
            self.privateKey = privateKey
            self.ca = ca
        }
    }

    public struct Limits: Sendable, Equatable {
        /// Largest artifact accepted, in bytes. Default 4 GiB.
        public var maxArtifactBytes: UInt64 = 4 << 30
        /// Uploads received at once. Default 2.
        public var maxConcurrentUploads: Int = 2
        /// Bytes of each hook output stream kept in the record. Default 64 KiB.
        public var hookOutputBytes: Int = 64 << 10
        /// Size of the artifact cache before least-recently-used eviction. Default 10 GiB.
        public var artifactCacheBytes: UInt64 = 10 << 30
        /// Bytes one release may unpack to. Default 16 GiB.
        public var maxUnpackedBytes: UInt64 = 16 << 30
        /// Entries one archive may hold. Default 200,000.
        public var maxArchiveEntries: Int = 200_000
        /// The slowest an artifact upload may arrive, in bytes per second, measured over
        /// each `uploadRateWindow`: a client that trickles bytes would otherwise hold an
        /// upload slot for as long as it likes. Default 64 KiB/s.
        public var minUploadBytesPerSecond: UInt64 = 64 << 10
        /// How often an upload's progress is measured. Default 20s.
        public var uploadRateWindow: BatonDuration = .seconds(20)

        public init() {}
    }

    public init(hostID: String, environment: String, trustPolicyPath: String, labels: [String: String] = [:],
                dataDirectory: String = "/var/lib/baton", listen: ListenAddress = .init(host: "0.0.0.0", port: 7443),
                metricsListen: ListenAddress? = nil, tls: TLSFiles? = nil,
                limits: Limits = Limits()) {
        self.hostID = hostID
        self.environment = environment
        self.trustPolicyPath = trustPolicyPath
        self.labels = labels
        self.dataDirectory = dataDirectory
        self.listen = listen
        self.metricsListen = metricsListen
        self.tls = tls
        self.limits = limits
    }

    public var identity: HostIdentity { HostIdentity(hostID: hostID, environment: environment) }
}

/// `host:port`, with `[v6]:port` for IPv6.
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public init?(parsing text: String) {
        let host: Substring, port: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            port = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            port = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, let number = Int(port), (0...65_535).contains(number) else { return nil }
        self.host = String(host)
        self.port = number
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

extension AgentConfiguration {
    /// Reads and checks a configuration file. Relative paths in it are relative to the file.
    public static func load(_ path: String) throws(ConfigurationError) -> AgentConfiguration {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw ConfigurationError(.keyUnreadable, "cannot read the agent configuration (does it exist?)", file: path)
        }
        try FilePermissions.check(path, what: "agent configuration", .trusted)
        return try parse(yaml: text, file: path)
    }

    public static func parse(yaml text: String, file: String) throws(ConfigurationError) -> AgentConfiguration {
        // Paths become absolute here: hooks run in other working directories, and a
        // relative data directory would mean something else to them.
        let directory = PathName.directory(of: file)
        let cwd = FileManager.default.currentDirectoryPath
        let base = directory.hasPrefix("/") ? directory : (directory.isEmpty ? cwd : "\(cwd)/\(directory)")
        func resolve(_ p: String) -> String {
            p.hasPrefix("/") ? p : "\(base)/\(p)"
        }
        let root = try YAMLDocument(text: text, file: file).root.mapping()
        try root.allowOnly(["hostId", "environment", "labels", "dataDir", "listen", "metricsListen", "tls", "trust", "limits", "fetch", "releaseSync"])

        var config = AgentConfiguration(
            hostID: try root.require("hostId").name(),
            environment: try root.require("environment").name(),
            trustPolicyPath: resolve(try root.require("trust").string()))
        if let labels = root["labels"] {
            for entry in try labels.mapping().entries { config.labels[entry.key] = try entry.value.string() }
        }
        if let dir = root["dataDir"] { config.dataDirectory = resolve(try dir.string()) }
        func address(_ key: String) throws(ConfigurationError) -> ListenAddress? {
            guard let node = root[key] else { return nil }
            let text = try node.string()
            guard let address = ListenAddress(parsing: text) else {
                throw node.error(.invalidValue, "'\(text)' is not host:port (e.g. 0.0.0.0:7443 or [::1]:7443)")
            }
            return address
        }
        if let listen = try address("listen") { config.listen = listen }
        if let metrics = try address("metricsListen") { config.metricsListen = metrics }
        if let tlsNode = root["tls"] {
            let tls = try tlsNode.mapping()
            try tls.allowOnly(["certificate", "privateKey", "ca"])
            config.tls = TLSFiles(
                certificate: resolve(try tls.require("certificate").string()),
                privateKey: resolve(try tls.require("privateKey").string()),
                ca: resolve(try tls.require("ca").string()))
        }
        if let limitsNode = root["limits"] {
            let limits = try limitsNode.mapping()
            try limits.allowOnly([
                "maxArtifactSize", "maxConcurrentUploads", "hookOutput", "artifactCache", "maxUnpackedSize",
                "maxArchiveEntries", "minUploadRate", "uploadRateWindow",
            ])
            if let v = limits["maxArtifactSize"] { config.limits.maxArtifactBytes = try ByteSize.parse(v) }
            if let v = limits["maxConcurrentUploads"] { config.limits.maxConcurrentUploads = try v.int(in: 1...64) }
            if let v = limits["hookOutput"] { config.limits.hookOutputBytes = Int(try ByteSize.parse(v, max: 16 << 20)) }
            if let v = limits["artifactCache"] { config.limits.artifactCacheBytes = try ByteSize.parse(v) }
            if let v = limits["maxUnpackedSize"] { config.limits.maxUnpackedBytes = try ByteSize.parse(v) }
            if let v = limits["maxArchiveEntries"] { config.limits.maxArchiveEntries = try v.int(in: 1...10_000_000) }
            // A rate per second, written as a size: `64KiB` means 64 KiB/s.
            if let v = limits["minUploadRate"] { config.limits.minUploadBytesPerSecond = try ByteSize.parse(v, max: 1 << 40) }
            if let v = limits["uploadRateWindow"] {
                let text = try v.string()
                guard let window = BatonDuration(parsing: text), window >= .seconds(1), window <= .minutes(10) else {
                    throw v.error(.invalidValue, "'\(text)' is not a duration from 1s to 10m; write it like 20s")
                }
                config.limits.uploadRateWindow = window
            }
        }
        if let fetch = root["fetch"] { config.fetch = try FetchSettings.parse(fetch, resolve: resolve) }
        if let node = root["releaseSync"] {
            let text = try node.string()
            guard let mode = TreeDurability(rawValue: text), mode != .none else {
                throw node.error(.invalidValue, "'\(text)' is not a release sync; write auto (the default: one syncfs when little else is dirty, else each file fsynced), files (each file fsynced) or filesystem (one syncfs)")
            }
            config.releaseSync = mode
        }
        return config
    }
}

/// Sizes as people write them: `512`, `64KiB`, `100MB`, `4GiB`.
enum ByteSize {
    static func parse(_ value: YAMLValue, max: UInt64 = 1 << 50) throws(ConfigurationError) -> UInt64 {
        let text = try value.string().filter { $0 != " " }
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        let unit = text.dropFirst(digits.count).lowercased()
        let factors: [String: UInt64] = [
            "": 1, "b": 1, "k": 1 << 10, "kb": 1000, "kib": 1 << 10, "m": 1 << 20, "mb": 1_000_000, "mib": 1 << 20,
            "g": 1 << 30, "gb": 1_000_000_000, "gib": 1 << 30, "t": 1 << 40, "tb": 1_000_000_000_000, "tib": 1 << 40,
        ]
        guard let number = UInt64(digits), let factor = factors[unit], number > 0 else {
            throw value.error(.invalidValue, "'\(text)' is not a size; write it like 64KiB, 100MB or 4GiB")
        }
        let (bytes, overflow) = number.multipliedReportingOverflow(by: factor)
        guard !overflow, bytes <= max else { throw value.error(.invalidValue, "'\(text)' is too large") }
        return bytes
    }
}
