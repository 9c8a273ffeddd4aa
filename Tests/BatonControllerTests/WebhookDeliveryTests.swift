import BatonController
import BatonProtocol
import BatonTestSupport
import Crypto
import Foundation
import Testing

/// The notifier against a real HTTP receiver on 127.0.0.1: bodies, signatures, retries,
/// and receivers that fail, hang or are not there, none of which may touch a rollout.
@Suite("Webhook delivery", .serialized)
struct WebhookDeliveryTests {
    static let fast = WebhookNotifier.Policy(firstBackoff: .milliseconds(50), attemptTimeout: .seconds(2), drainTimeout: .seconds(10))

    static func notification(_ event: RolloutMilestone = .halted, severity: NotificationSeverity = .warning) -> RolloutNotification {
        RolloutNotification(
            event: event, severity: severity, time: Date(timeIntervalSince1970: 1_800_000_000), rolloutID: "r-1", app: "web",
            release: "v2", serial: 2, environment: "staging", actor: "ci@build", outcome: nil, haltReason: "the canary failed on host-1",
            counts: .init(hosts: 5, succeeded: 0, failed: 1, skipped: 4), attention: [], message: "halted: the canary failed on host-1",
            hint: "baton history show r-1")
    }

    static func hook(_ receiver: WebhookReceiver, format: NotificationHook.Format = .generic, secret: String? = nil,
                     headers: [String: String] = [:]) throws -> NotificationHook {
        NotificationHook(url: try #require(URL(string: receiver.url)), format: format, headers: headers, secret: secret.map { Array($0.utf8) })
    }

    @Test("generic: the documented object, POSTed as JSON with the hook's headers and a signature the receiver can check")
    func genericSigned() async throws {
        let receiver = try await WebhookReceiver.start()
        let notices = Notices()
        let notifier = WebhookNotifier(
            hooks: [try Self.hook(receiver, secret: "s3cret", headers: ["X-Team": "web"])], policy: Self.fast, warn: { notices.add($0) })
        notifier.send(Self.notification())
        #expect(await notifier.drain())
        await receiver.stop()
        let requests = receiver.requests
        try #require(requests.count == 1)
        let request = requests[0]
        #expect(request.method == "POST" && request.path == "/hook")
        #expect(request.headers["content-type"] == "application/json")
        #expect(request.headers["x-team"] == "web")
        let body = try #require(request.json)
        #expect(body["schema"] as? String == "baton.rollout.v1")
        #expect(body["event"] as? String == "halted" && body["severity"] as? String == "warning")
        #expect(body["rolloutID"] as? String == "r-1" && body["app"] as? String == "web" && body["release"] as? String == "v2")
        #expect(body["environment"] as? String == "staging" && body["actor"] as? String == "ci@build")
        #expect(body["haltReason"] as? String == "the canary failed on host-1")
        #expect(body["hint"] as? String == "baton history show r-1")
        #expect(body["time"] as? String == "2027-01-15T08:00:00Z")
        let counts = try #require(body["counts"] as? [String: Int])
        #expect(counts == ["hosts": 5, "succeeded": 0, "failed": 1, "reverted": 0, "unreachable": 0, "skipped": 4])

        // What a receiver does: HMAC-SHA256 of the raw body under the shared secret.
        let header = try #require(request.headers["x-baton-signature-256"])
        #expect(header.hasPrefix("sha256="))
        let expected = HMAC<SHA256>.authenticationCode(for: request.body, using: SymmetricKey(data: Array("s3cret".utf8)))
        #expect(header == "sha256=" + expected.map { String(format: "%02x", $0) }.joined())
        let forged = HMAC<SHA256>.authenticationCode(for: request.body + Array(" ".utf8), using: SymmetricKey(data: Array("s3cret".utf8)))
        #expect(header != "sha256=" + forged.map { String(format: "%02x", $0) }.joined())
        #expect(notices.all.isEmpty)
    }

    @Test("slack: a text field people read and blocks with the history hint; no signature header without a secret")
    func slackBody() async throws {
        let receiver = try await WebhookReceiver.start()
        let notifier = WebhookNotifier(hooks: [try Self.hook(receiver, format: .slack)], policy: Self.fast, warn: { _ in })
        notifier.send(Self.notification())
        #expect(await notifier.drain())
        await receiver.stop()
        let request = try #require(receiver.requests.first)
        #expect(request.headers["x-baton-signature-256"] == nil)
        let body = try #require(request.json)
        let text = try #require(body["text"] as? String)
        #expect(text.hasPrefix("[warning] web v2 to staging halted (rollout r-1, by ci@build)"))
        #expect(text.contains("halted: the canary failed on host-1"))
        #expect(text.contains("5 host(s): 0 succeeded, 1 failed, 0 reverted, 0 unreachable, 4 not deployed"))
        let blocks = try #require(body["blocks"] as? [[String: Any]])
        #expect(blocks.map { $0["type"] as? String } == ["section", "context"])
        let context = try #require((blocks[1]["elements"] as? [[String: Any]])?.first?["text"] as? String)
        #expect(context == "`baton history show r-1`")
    }

    @Test("slack, started: what is about to happen, without counts that are all zero")
    func slackStarted() throws {
        var started = Self.notification(.started, severity: .info)
        started.haltReason = nil
        started.message = "rollout r-1: web v2 (serial 2) to 5 host(s) in staging; canary 1, batches of 2"
        let bytes = try WebhookBody.encode(started, format: .slack)
        let body = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        #expect(body["text"] as? String == """
            [info] web v2 to staging started (rollout r-1, by ci@build)
            rollout r-1: web v2 (serial 2) to 5 host(s) in staging; canary 1, batches of 2
            """)
    }

    @Test("500, 500, then 200: delivered once, on the third attempt, the same body each time")
    func retriesWithBackoff() async throws {
        let receiver = try await WebhookReceiver.start(replies: [.status(500), .status(500)])
        let notices = Notices()
        let notifier = WebhookNotifier(hooks: [try Self.hook(receiver)], policy: Self.fast, warn: { notices.add($0) })
        let started = ContinuousClock.now
        notifier.send(Self.notification())
        #expect(await notifier.drain())
        let elapsed = ContinuousClock.now - started
        await receiver.stop()
        #expect(notifier.deliveries == [WebhookNotifier.Delivery(hook: 0, event: .halted, attempts: 3, delivered: true)])
        let requests = receiver.requests
        #expect(requests.count == 3)
        #expect(Set(requests.map(\.body)).count == 1)
        // Backoff 50 ms then 100 ms between the three attempts.
        #expect(elapsed >= .milliseconds(150))
        #expect(notices.all.isEmpty)
    }

    @Test("a 4xx other than 408 or 429 is not retried; a failing hook is reported once, not once per notification")
    func refusedOnceReportedOnce() async throws {
        let receiver = try await WebhookReceiver.start(otherwise: .status(403))
        let notices = Notices()
        let notifier = WebhookNotifier(hooks: [try Self.hook(receiver)], policy: Self.fast, warn: { notices.add($0) })
        notifier.send(Self.notification(.started, severity: .info))
        notifier.send(Self.notification())
        #expect(await notifier.drain())
        await receiver.stop()
        #expect(receiver.requests.count == 2)
        #expect(notifier.deliveries.map(\.attempts) == [1, 1])
        #expect(notices.all == ["warning: notification to 127.0.0.1 failed: HTTP 403"])
    }

    @Test("a hook's filter applies before anything is sent")
    func filteredBeforeSending() async throws {
        let receiver = try await WebhookReceiver.start()
        var hook = try Self.hook(receiver)
        hook.minSeverity = .critical
        let notifier = WebhookNotifier(hooks: [hook], policy: Self.fast, warn: { _ in })
        notifier.send(Self.notification())
        notifier.send(Self.notification(.finished, severity: .critical))
        #expect(await notifier.drain())
        await receiver.stop()
        #expect(receiver.requests.compactMap { $0.json?["event"] as? String } == ["finished"])
    }

    /// A rollout of three in-memory hosts, shown through `NotifyingRenderer`; its summary,
    /// how long `run` took, and the notifier.
    static func rollout(_ id: String, hook: NotificationHook, policy: WebhookNotifier.Policy, notices: Notices) async throws
        -> (RolloutSummary, Duration, WebhookNotifier)
    {
        let dir = try TemporaryDirectory(prefix: "baton-notify")
        defer { dir.remove() }
        let store = try SQLiteHistoryStore(path: dir.child("history.sqlite"))
        let notifier = WebhookNotifier(hooks: [hook], policy: policy, warn: { notices.add($0) })
        let identity = RolloutIdentity(app: "web", release: "v2", serial: 2, environment: "staging", actor: "ci@build", hosts: 3)
        let progress = NotifyingRenderer(base: Progress(), notifier: notifier, identity: identity)
        let session = RolloutSessionTests.session(store, dir, agent: SessionTestAgent(), progress: Progress(), notices: notices)
        var notifying = session
        notifying.progress = progress
        let started = ContinuousClock.now
        let summary = try await notifying.run(RolloutSessionTests.request(id), signers: ["ci"])
        return (summary, ContinuousClock.now - started, notifier)
    }

    @Test("a receiver that never answers delays neither the rollout nor the exit beyond the drain bound")
    func hungReceiver() async throws {
        let receiver = try await WebhookReceiver.start(otherwise: .silent)
        defer { Task { await receiver.stop() } }
        let notices = Notices()
        let policy = WebhookNotifier.Policy(firstBackoff: .milliseconds(50), attemptTimeout: .seconds(30), drainTimeout: .seconds(1))
        let (summary, took, notifier) = try await Self.rollout("r-hung", hook: try Self.hook(receiver), policy: policy, notices: notices)
        #expect(summary.outcome == .succeeded && summary.exitStatus == 0)
        #expect(took < .seconds(5), "the rollout took \(took)")
        let started = ContinuousClock.now
        #expect(await notifier.drain() == false)
        let waited = ContinuousClock.now - started
        #expect(waited >= .seconds(1) && waited < .seconds(3), "drain waited \(waited)")
        #expect(await receiver.waitFor(1).count >= 1, "the started notification reached the receiver")
        #expect(notices.all.contains { $0.hasPrefix("warning: gave up on 2 pending notification(s) after 1s") }, "\(notices.all)")
    }

    @Test("a receiver that is down (closed port) changes nothing about the rollout; the failure is one warning")
    func downReceiver() async throws {
        let receiver = try await WebhookReceiver.start()
        await receiver.stop()
        let notices = Notices()
        let (summary, _, notifier) = try await Self.rollout("r-down", hook: try Self.hook(receiver), policy: Self.fast, notices: notices)
        #expect(summary.outcome == .succeeded && summary.exitStatus == 0)
        #expect(await notifier.drain())
        #expect(notifier.deliveries.map(\.event) == [.started, .finished])
        #expect(notifier.deliveries.allSatisfy { !$0.delivered && $0.attempts == 3 })
        let warnings = notices.all.filter { $0.hasPrefix("warning: notification to 127.0.0.1 failed: ") }
        #expect(warnings.count == 1, "\(notices.all)")
        #expect(receiver.requests.isEmpty)
    }
}
