import BatonProtocol
import Foundation

/// One webhook from `notifications:` in `baton.yaml`.
/// ```yaml
/// notifications:
///   - url: https://hooks.example.com/T000/B000/XXXX
///     format: slack              # or generic (the default)
///     minSeverity: warning       # info (the default), warning or critical
///     events: [halted, reverted, finished]   # optional; every milestone when absent
///     headers: {Authorization: Bearer abc}  # optional
///     secretFile: secrets/hook.key           # optional: signs the body (HMAC-SHA256)
/// ```
public struct NotificationHook: Sendable, Equatable {
    public enum Format: String, Sendable, CaseIterable {
        /// `{"text": ..., "blocks": [...]}`: what Slack's incoming webhooks and the chat
        /// tools that copy them (Mattermost, Rocket.Chat) accept.
        case slack
        /// The documented `RolloutNotification` object.
        case generic
    }

    public var url: URL
    public var format: Format
    public var minSeverity: NotificationSeverity
    /// nil: every milestone.
    public var events: Set<RolloutMilestone>?
    public var headers: [String: String]
    /// The HMAC key, read from `secretFile` when the configuration is loaded, so that an
    /// unreadable file fails the command before a rollout starts.
    public var secret: [UInt8]?

    public init(url: URL, format: Format = .generic, minSeverity: NotificationSeverity = .info,
                events: Set<RolloutMilestone>? = nil, headers: [String: String] = [:], secret: [UInt8]? = nil) {
        self.url = url
        self.format = format
        self.minSeverity = minSeverity
        self.events = events
        self.headers = headers
        self.secret = secret
    }

    /// Whether this hook wants `notification`.
    public func accepts(_ notification: RolloutNotification) -> Bool {
        notification.severity >= minSeverity && (events?.contains(notification.event) ?? true)
    }

    /// The host named in warnings: never the path, which often holds a token.
    public var hostLabel: String { url.host ?? "?" }

    /// `notifications:` as written; `base` resolves a relative `secretFile`.
    static func parseList(_ value: YAMLValue, base: String) throws(ConfigurationError) -> [NotificationHook] {
        var hooks: [NotificationHook] = []
        for item in try value.list() { hooks.append(try parse(item, base: base)) }
        return hooks
    }

    static func parse(_ value: YAMLValue, base: String) throws(ConfigurationError) -> NotificationHook {
        let map = try value.mapping()
        try map.allowOnly(["url", "format", "minSeverity", "events", "headers", "secretFile"])
        let urlNode = try map.require("url")
        let text = try urlNode.string()
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
              let host = url.host, !host.isEmpty
        else {
            throw urlNode.error(.invalidValue, "'\(text)' is not an http:// or https:// URL with a host")
        }
        var hook = NotificationHook(url: url)
        if let node = map["format"] {
            hook.format = try pick(node, Format.init(rawValue:), Format.allCases.map(\.rawValue))
        }
        if let node = map["minSeverity"] {
            hook.minSeverity = try pick(node, NotificationSeverity.init(rawValue:), NotificationSeverity.allCases.map(\.rawValue))
        }
        if let node = map["events"] {
            var events = Set<RolloutMilestone>()
            for item in try node.list() {
                events.insert(try pick(item, RolloutMilestone.init(rawValue:), RolloutMilestone.allCases.map(\.rawValue)))
            }
            guard !events.isEmpty else { throw node.error(.invalidValue, "an empty list would send nothing; leave 'events' out for all") }
            hook.events = events
        }
        if let node = map["headers"] {
            for entry in try node.mapping().entries {
                let value = try entry.value.string()
                // A header name or value with a line break would smuggle a second header.
                guard !entry.key.isEmpty, !(entry.key + value).contains(where: \.isNewline), !entry.key.contains(":") else {
                    throw entry.value.error(.invalidValue, "not a valid HTTP header")
                }
                hook.headers[entry.key] = value
            }
        }
        if let node = map["secretFile"] {
            let path = try node.string()
            let absolute = path.hasPrefix("/") ? path : (base as NSString).appendingPathComponent(path)
            guard let data = FileManager.default.contents(atPath: absolute) else {
                throw node.error(.keyUnreadable, "cannot read the secret file '\(absolute)'")
            }
            // A trailing newline from `echo` or an editor is not part of the secret.
            let secret = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard !secret.isEmpty else { throw node.error(.invalidValue, "the secret file '\(absolute)' is empty") }
            hook.secret = Array(secret.utf8)
        }
        return hook
    }

    private static func pick<T>(_ node: YAMLValue, _ make: (String) -> T?, _ allowed: [String]) throws(ConfigurationError) -> T {
        let text = try node.string()
        guard let value = make(text) else {
            throw node.error(.invalidValue, "'\(text)' is not one of: \(allowed.joined(separator: ", "))")
        }
        return value
    }
}
