import BatonProtocol
import Foundation

/// One app, from its app file (reviewed like code). Hooks and health use the manifest's
/// own shapes, so what a reviewer reads is what agents run.
/// ```yaml
/// app: web
/// owner: team-web
/// environments: [staging, production]
/// keep: 5
/// bake: 2m
/// hooks:
///   prepare: {command: ./bin/check-config, timeout: 30s}
///   activate: {command: [systemctl, restart, web]}
/// health:
///   checks:
///     - {type: http, url: "http://127.0.0.1:8080/health", expectStatus: "200-299", bodyContains: ok}
///   interval: 1s
///   deadline: 30s
/// drill: {maxAge: 30d}   # `baton status` flags the app when its last successful drill is older
/// ```
public struct AppDefinition: Sendable, Equatable {
    public var app: String
    public var owner: String?
    public var environments: [String]
    public var hooks: Hooks?
    public var health: HealthPolicy?
    public var bake: BatonDuration?
    public var keep: Int?
    /// `drill: {maxAge: 30d}`: how old the last successful `baton drill` of the app in an
    /// environment may be before `baton status` flags it; nil: drills are not required.
    public var drillMaxAge: BatonDuration?
    /// Canary analysis for rollouts with a canary (``CanaryAnalysis``).
    public var analysis: CanaryAnalysis?

    public init(app: String, owner: String? = nil, environments: [String], hooks: Hooks? = nil,
                health: HealthPolicy? = nil, bake: BatonDuration? = nil, keep: Int? = nil) {
        self.app = app
        self.owner = owner
        self.environments = environments
        self.hooks = hooks
        self.health = health
        self.bake = bake
        self.keep = keep
    }

    public static func load(_ path: String) throws(ConfigurationError) -> AppDefinition {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw ConfigurationError(.keyUnreadable, "cannot read the app file (does it exist?)", file: path)
        }
        return try parse(yaml: text, file: path)
    }

    public static func parse(yaml text: String, file: String) throws(ConfigurationError) -> AppDefinition {
        let root = try YAMLDocument(text: text, file: file).root.mapping()
        try root.allowOnly(["app", "owner", "environments", "hooks", "health", "bake", "keep", "drill", "analysis"])
        var definition = AppDefinition(
            app: try root.require("app").name(),
            environments: try root.require("environments").list().map { node throws(ConfigurationError) in try node.name() })
        if definition.environments.isEmpty {
            throw try root.require("environments").error(.invalidValue, "list at least one environment")
        }
        definition.owner = try root["owner"]?.string()
        if let node = root["bake"] { definition.bake = try node.duration() }
        if let node = root["keep"] { definition.keep = try node.int(in: ManifestLimits.keep) }
        if let node = root["drill"] {
            let drill = try node.mapping()
            try drill.allowOnly(["maxAge"])
            let ageNode = try drill.require("maxAge")
            let text = try ageNode.string()
            guard let age = BatonDuration(parsingValidity: text), age.milliseconds > 0 else {
                throw ageNode.error(.invalidValue, "'\(text)' is not an age; write days (30d) or a duration (12h)")
            }
            definition.drillMaxAge = age
        }
        if let node = root["hooks"] {
            try node.mapping().allowOnly(["prepare", "activate"])
            definition.hooks = try decode(Hooks.self, from: node)
        }
        if let node = root["health"] {
            try node.mapping().allowOnly(["checks", "timeout", "interval", "deadline"])
            definition.health = try decode(HealthPolicy.self, from: node)
        }
        if let node = root["analysis"] {
            try node.mapping().allowOnly([
                "server", "query", "maxRatio", "failRatio", "maxDifference", "failDifference", "mannWhitney", "timeout", "window",
            ])
            let analysis = try decode(CanaryAnalysis.self, from: node)
            let problems = analysis.problems()
            if !problems.isEmpty { throw node.error(.invalidValue, problems.joined(separator: "; ")) }
            definition.analysis = analysis
        }
        // Check what agents would check, now, with the file's line numbers.
        var probe = Manifest(
            app: definition.app, release: "check", serial: 1, environment: definition.environments[0],
            issuedAt: Date(timeIntervalSince1970: 0), expiresAt: Date(timeIntervalSince1970: 60),
            artifact: ArtifactReference(sha256: String(repeating: "0", count: 64), size: 1, format: .tarGz),
            hooks: definition.hooks, health: definition.health, bake: definition.bake, keep: definition.keep)
        probe.owner = definition.owner
        let problems = probe.problems()
        if !problems.isEmpty {
            throw root.owner.error(.invalidValue, problems.joined(separator: "; "))
        }
        return definition
    }

    /// Loads the app file found for `app` and checks that it is that app's: a file
    /// `apps/web.yaml` saying `app: webb` would otherwise deploy "webb" everywhere.
    public static func load(_ path: String, for app: String) throws -> AppDefinition {
        let definition = try load(path)
        guard definition.app == app else {
            throw ControllerError(
                .appFileMismatch,
                "\(path) is the app file of '\(app)' by its name, but says `app: \(definition.app)`; make them agree (rename the file or fix `app:`)")
        }
        return definition
    }

    private static func decode<T: Decodable>(_ type: T.Type, from node: YAMLValue) throws(ConfigurationError) -> T {
        do {
            let json = try BatonJSON.encode(try node.jsonObject())
            return try BatonJSON.decode(T.self, from: json)
        } catch let error as ConfigurationError {
            throw error
        } catch let error as DecodingError {
            throw node.error(.invalidValue, error.batonSummary)
        } catch {
            throw node.error(.invalidValue, "\(error)")
        }
    }
}
