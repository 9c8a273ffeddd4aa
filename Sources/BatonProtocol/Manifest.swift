#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Manifest v1: what one release of one app is, where it may run, and how the agent
/// proves it healthy. It travels as the payload of a DSSE envelope with payloadType
/// `application/vnd.baton.manifest.v1+json` (see `Protocol/PROTOCOL.md`).
///
/// Who signed it is never part of the payload: signers are derived from the verified
/// envelope. Unknown fields are ignored, so a `signedBy` in a payload has no effect.
public struct Manifest: Codable, Sendable, Equatable {
    public static let payloadType = "application/vnd.baton.manifest.v1+json"
    /// The largest payload accepted, in bytes.
    public static let maxPayloadBytes = 64 * 1024

    public var app: String
    public var release: String
    /// Strictly increasing per app on every host: replay and rollback protection.
    public var serial: UInt64
    public var environment: String
    /// Host ids this manifest may be applied on. Absent: every host of the environment.
    public var targets: [String]?
    public var issuedAt: Date
    public var expiresAt: Date
    public var artifact: ArtifactReference
    public var hooks: Hooks?
    public var health: HealthPolicy?
    /// How long health keeps being watched after the first success before the host is
    /// done; a failure within it rolls back. Absent: no bake.
    public var bake: BatonDuration?
    /// Releases retained on the host (the one `current` names is always kept). Default 5.
    public var keep: Int?
    /// Release notes, for people.
    public var notes: String?
    /// Who watches the service after this release.
    public var owner: String?
    /// The commit or build this release came from.
    public var source: String?

    public init(
        app: String, release: String, serial: UInt64, environment: String, targets: [String]? = nil,
        issuedAt: Date, expiresAt: Date, artifact: ArtifactReference, hooks: Hooks? = nil,
        health: HealthPolicy? = nil, bake: BatonDuration? = nil, keep: Int? = nil,
        notes: String? = nil, owner: String? = nil, source: String? = nil
    ) {
        self.app = app
        self.release = release
        self.serial = serial
        self.environment = environment
        self.targets = targets
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.artifact = artifact
        self.hooks = hooks
        self.health = health
        self.bake = bake
        self.keep = keep
        self.notes = notes
        self.owner = owner
        self.source = source
    }

    public static let defaultKeep = 5
    public var effectiveKeep: Int { keep ?? Self.defaultKeep }
    public var effectiveBake: BatonDuration { bake ?? .zero }
}

/// The artifact a release is unpacked from, named by its content.
public struct ArtifactReference: Codable, Sendable, Equatable {
    /// Lowercase hex SHA-256 of the artifact bytes.
    public var sha256: String
    /// Exact size in bytes; the agent stops reading at this size.
    public var size: UInt64
    public var format: ArtifactFormat
    /// Where the agent may fetch it if it was not uploaded. Optional.
    public var url: String?

    public init(sha256: String, size: UInt64, format: ArtifactFormat, url: String? = nil) {
        self.sha256 = sha256
        self.size = size
        self.format = format
        self.url = url
    }
}

public enum ArtifactFormat: String, Codable, Sendable, Equatable {
    case tar
    case tarGz = "tar.gz"
}

/// The two hook points of a deployment.
public struct Hooks: Codable, Sendable, Equatable {
    /// Runs in the staged release before the switch (e.g. migrations, asset checks).
    public var prepare: Hook?
    /// Runs after the switch (e.g. restart the service).
    public var activate: Hook?

    public init(prepare: Hook? = nil, activate: Hook? = nil) {
        self.prepare = prepare
        self.activate = activate
    }
}

public struct Hook: Codable, Sendable, Equatable {
    public var command: Command
    /// Default 60s. The hook's whole process group is killed when it runs out.
    public var timeout: BatonDuration?

    public init(command: Command, timeout: BatonDuration? = nil) {
        self.command = command
        self.timeout = timeout
    }

    public static let defaultTimeout = BatonDuration.seconds(60)
    public var effectiveTimeout: BatonDuration { timeout ?? Self.defaultTimeout }
}

/// A command: an argv array run directly, or a string run by `/bin/sh -c`.
public enum Command: Codable, Sendable, Equatable {
    case argv([String])
    case shell(String)

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let argv = try? container.decode([String].self) {
            self = .argv(argv)
        } else if let shell = try? container.decode(String.self) {
            self = .shell(shell)
        } else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "a command is a list of arguments or a shell string")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .argv(let argv): try container.encode(argv)
        case .shell(let shell): try container.encode(shell)
        }
    }

    /// What is executed: argv as is, a shell string through `/bin/sh -c`.
    public var arguments: [String] {
        switch self {
        case .argv(let argv): argv
        case .shell(let shell): ["/bin/sh", "-c", shell]
        }
    }
}

/// Health checks run after activation, and again through the bake.
public struct HealthPolicy: Codable, Sendable, Equatable {
    /// All must pass for an attempt to pass.
    public var checks: [HealthCheck]
    /// Per-attempt timeout of each check. Default 2s.
    public var timeout: BatonDuration?
    /// Time between attempts. Default 1s.
    public var interval: BatonDuration?
    /// Give up (and roll back) if no attempt passed within this time. Default 30s.
    public var deadline: BatonDuration?

    public init(checks: [HealthCheck], timeout: BatonDuration? = nil, interval: BatonDuration? = nil,
                deadline: BatonDuration? = nil) {
        self.checks = checks
        self.timeout = timeout
        self.interval = interval
        self.deadline = deadline
    }

    public var effectiveTimeout: BatonDuration { timeout ?? .seconds(2) }
    public var effectiveInterval: BatonDuration { interval ?? .seconds(1) }
    public var effectiveDeadline: BatonDuration { deadline ?? .seconds(30) }
}

/// One health check, tagged by `type`: `http`, `tcp`, `command` or `prometheus`.
public enum HealthCheck: Codable, Sendable, Equatable {
    case http(url: String, expectStatus: StatusRange, bodyContains: String?)
    case tcp(host: String, port: Int)
    case command(Command)
    /// A metric gate: its fields sit beside `type` (see `MetricCheck`).
    case prometheus(MetricCheck)

    private enum CodingKeys: String, CodingKey {
        case type, url, expectStatus, bodyContains, host, port, command
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let type = try c.decode(String.self, forKey: .type)
        switch type {
        case "http":
            self = .http(
                url: try c.decode(String.self, forKey: .url),
                expectStatus: try c.decodeIfPresent(StatusRange.self, forKey: .expectStatus) ?? .success,
                bodyContains: try c.decodeIfPresent(String.self, forKey: .bodyContains))
        case "tcp":
            self = .tcp(host: try c.decode(String.self, forKey: .host), port: try c.decode(Int.self, forKey: .port))
        case "command":
            self = .command(try c.decode(Command.self, forKey: .command))
        case "prometheus":
            self = .prometheus(try MetricCheck(from: decoder))
        default:
            throw DecodingError.dataCorruptedError(
                forKey: .type, in: c, debugDescription: "unknown health check type '\(type)'; use http, tcp, command or prometheus")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .http(let url, let expectStatus, let bodyContains):
            try c.encode("http", forKey: .type)
            try c.encode(url, forKey: .url)
            try c.encode(expectStatus, forKey: .expectStatus)
            try c.encodeIfPresent(bodyContains, forKey: .bodyContains)
        case .tcp(let host, let port):
            try c.encode("tcp", forKey: .type)
            try c.encode(host, forKey: .host)
            try c.encode(port, forKey: .port)
        case .command(let command):
            try c.encode("command", forKey: .type)
            try c.encode(command, forKey: .command)
        case .prometheus(let metric):
            try c.encode("prometheus", forKey: .type)
            try metric.encode(to: encoder)
        }
    }

    /// A short human description, for records and logs.
    public var summary: String {
        switch self {
        case .http(let url, let range, _): "http \(url) expecting \(range)"
        case .tcp(let host, let port): "tcp \(host):\(port)"
        case .command(let command):
            // The program by its name: a long install or build path says nothing to a reader.
            "command " + ([command.arguments.first.map { String($0.split(separator: "/").last ?? Substring($0)) } ?? ""]
                + command.arguments.dropFirst()).joined(separator: " ")
        case .prometheus(let metric):
            "prometheus " + (metric.query.count > 120 ? String(metric.query.prefix(119)) + "…" : metric.query) + " (\(metric.bounds))"
        }
    }
}

/// An inclusive range of HTTP status codes, written `"200-299"` or `"204"`.
public struct StatusRange: Codable, Sendable, Equatable, CustomStringConvertible {
    public var lower: Int
    public var upper: Int

    public init(_ lower: Int, _ upper: Int) {
        self.lower = lower
        self.upper = upper
    }

    public static let success = StatusRange(200, 299)

    public func contains(_ status: Int) -> Bool { status >= lower && status <= upper }

    public init?(parsing text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let lo = Int(parts[0]), let hi = Int(parts.last!),
            (100...599).contains(lo), (100...599).contains(hi), lo <= hi
        else { return nil }
        lower = lo
        upper = hi
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let single = try? c.decode(Int.self), let range = StatusRange(parsing: String(single)) {
            self = range
            return
        }
        let text = try c.decode(String.self)
        guard let range = StatusRange(parsing: text) else {
            throw DecodingError.dataCorruptedError(
                in: c, debugDescription: "'\(text)' is not a status range; write it like \"200-299\" or \"204\"")
        }
        self = range
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }

    public var description: String { lower == upper ? "\(lower)" : "\(lower)-\(upper)" }
}
