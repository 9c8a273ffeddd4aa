import BatonProtocol
import Crypto
import Foundation

/// The bytes a hook POSTs, and the signature over them.
public enum WebhookBody {
    /// The header carrying `sha256=<hex HMAC-SHA256 of the body>` when the hook has a
    /// secret, as GitHub's `X-Hub-Signature-256` does.
    public static let signatureHeader = "X-Baton-Signature-256"

    public static func encode(_ notification: RolloutNotification, format: NotificationHook.Format) throws -> [UInt8] {
        switch format {
        case .generic: return Array(try BatonJSON.encode(notification))
        case .slack: return Array(try BatonJSON.encode(SlackMessage(notification)))
        }
    }

    /// `sha256=` and the lowercase hex HMAC-SHA256 of `body` under `secret`.
    public static func signature(_ body: [UInt8], secret: [UInt8]) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: secret))
        return "sha256=" + mac.map { String(format: "%02x", $0) }.joined()
    }

    /// The one line people read, in Slack's and the generic body alike.
    public static func headline(_ n: RolloutNotification) -> String {
        let what: String
        switch n.event {
        case .started: what = "started"
        case .paused: what = "paused after the canary"
        case .halted: what = "halted"
        case .reverted: what = "reverted"
        case .finished: what = "finished: \(n.outcome ?? "unknown")"
        }
        return "[\(n.severity.rawValue)] \(n.app) \(n.release) to \(n.environment) \(what) (rollout \(n.rolloutID), by \(n.actor))"
    }

    static func countsLine(_ c: RolloutNotification.Counts) -> String {
        "\(c.hosts) host(s): \(c.succeeded) succeeded, \(c.failed) failed, \(c.reverted) reverted, \(c.unreachable) unreachable, \(c.skipped) not deployed"
    }
}

/// Slack's incoming-webhook shape: `text` (also the fallback where blocks are not shown)
/// and one section and one context block.
struct SlackMessage: Encodable {
    struct Text: Encodable {
        var type: String
        var text: String
    }

    struct Block: Encodable {
        var type: String
        var text: Text?
        var elements: [Text]?
    }

    var text: String
    var blocks: [Block]

    init(_ n: RolloutNotification) {
        var lines = [WebhookBody.headline(n)]
        if n.event == .started {
            // What is about to happen (hosts, strategy, or an abort); no counts yet.
            lines.append(n.message)
        } else {
            if let reason = n.haltReason { lines.append("halted: \(reason)") }
            lines.append(WebhookBody.countsLine(n.counts))
        }
        if !n.attention.isEmpty { lines.append("needs attention: \(n.attention.joined(separator: ", "))") }
        text = lines.joined(separator: "\n")
        blocks = [
            Block(type: "section", text: Text(type: "mrkdwn", text: text)),
            Block(type: "context", elements: [Text(type: "mrkdwn", text: "`\(n.hint)`")]),
        ]
    }
}
