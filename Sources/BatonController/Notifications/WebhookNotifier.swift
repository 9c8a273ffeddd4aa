import AsyncHTTPClient
import Foundation
import NIOCore
import Synchronization

/// Delivers rollout notifications to the configured hooks in the background: `send`
/// only queues, one task per hook POSTs in order, and nothing here can slow a rollout
/// down or change how it ends. `drain` waits for what is queued, up to a bound.
///
/// A delivery is tried `attempts` times, each with its own timeout, waiting
/// `firstBackoff` (then twice as long each time) between tries; a 4xx answer other than
/// 408 or 429 is not retried, since the same body would be refused again. A hook that
/// fails is reported once through `warn`, however many of its notifications fail.
public final class WebhookNotifier: Sendable {
    public struct Policy: Sendable {
        public var attempts: Int
        public var firstBackoff: Duration
        public var attemptTimeout: Duration
        /// How long `drain` waits at the end of a command before giving up.
        public var drainTimeout: Duration

        public init(attempts: Int = 3, firstBackoff: Duration = .milliseconds(500), attemptTimeout: Duration = .seconds(5),
                    drainTimeout: Duration = .seconds(5)) {
            self.attempts = max(1, attempts)
            self.firstBackoff = firstBackoff
            self.attemptTimeout = attemptTimeout
            self.drainTimeout = drainTimeout
        }
    }

    /// How one notification to one hook ended, for tests and diagnostics.
    public struct Delivery: Sendable, Equatable {
        public var hook: Int
        public var event: RolloutMilestone
        public var attempts: Int
        public var delivered: Bool

        public init(hook: Int, event: RolloutMilestone, attempts: Int, delivered: Bool) {
            self.hook = hook
            self.event = event
            self.attempts = attempts
            self.delivered = delivered
        }
    }

    let hooks: [NotificationHook]
    let policy: Policy
    let warn: @Sendable (String) -> Void
    private let queues: [AsyncStream<RolloutNotification>.Continuation]
    private let workers: [Task<Void, Never>]
    private let state: Ledger

    /// Shared with the workers, which start before `self` is whole.
    private final class Ledger: Sendable {
        struct Counts {
            var pending = 0
            var warned = Set<Int>()
            var deliveries: [Delivery] = []
        }

        private let value = Mutex(Counts())

        func withLock<T: Sendable>(_ body: (inout Counts) -> T) -> T { value.withLock { body(&$0) } }
    }

    public init(hooks: [NotificationHook], policy: Policy = Policy(), client: HTTPClient = WebhookClient.shared,
                warn: @escaping @Sendable (String) -> Void) {
        self.hooks = hooks
        self.policy = policy
        self.warn = warn
        var queues: [AsyncStream<RolloutNotification>.Continuation] = []
        var streams: [AsyncStream<RolloutNotification>] = []
        for _ in hooks {
            let (stream, continuation) = AsyncStream.makeStream(of: RolloutNotification.self)
            streams.append(stream)
            queues.append(continuation)
        }
        self.queues = queues
        let state = Ledger()
        self.state = state
        let deliver = Deliverer(client: client, policy: policy)
        var workers: [Task<Void, Never>] = []
        for (index, stream) in streams.enumerated() {
            let hook = hooks[index]
            workers.append(Task {
                for await notification in stream {
                    let (attempts, failure) = await deliver.post(notification, to: hook)
                    let firstFailure = state.withLock { state -> Bool in
                        state.pending -= 1
                        state.deliveries.append(Delivery(hook: index, event: notification.event, attempts: attempts, delivered: failure == nil))
                        return failure != nil && state.warned.insert(index).inserted
                    }
                    if let failure, firstFailure {
                        warn("warning: notification to \(hook.hostLabel) failed: \(failure)")
                    }
                }
            })
        }
        self.workers = workers
    }

    /// Queues `notification` for every hook that accepts it; returns at once.
    public func send(_ notification: RolloutNotification) {
        for (index, hook) in hooks.enumerated() where hook.accepts(notification) {
            state.withLock { $0.pending += 1 }
            if case .terminated = queues[index].yield(notification) {
                state.withLock { $0.pending -= 1 }
            }
        }
    }

    /// What was delivered or given up on so far, in the order it ended.
    public var deliveries: [Delivery] { state.withLock { $0.deliveries } }

    /// Stops taking notifications and waits for the queued ones, at most
    /// `policy.drainTimeout`; then cancels what is left, says so through `warn`, and
    /// returns false. Never throws: a notification never changes how a command ends.
    @discardableResult
    public func drain() async -> Bool {
        for queue in queues { queue.finish() }
        let workers = self.workers
        let timeout = policy.drainTimeout
        let finishedInTime = await Self.firstOf(
            { for worker in workers { await worker.value } },
            orAfter: timeout)
        if !finishedInTime {
            // Counted before the cancellation: a cancelled delivery ends (and leaves the
            // count) on its own thread, and counting after it raced with that.
            let left = state.withLock { $0.pending }
            for worker in workers { worker.cancel() }
            warn("warning: gave up on \(left) pending notification(s) after \(Self.text(timeout))")
        }
        return finishedInTime
    }

    /// `1s`, `2500ms`.
    static func text(_ duration: Duration) -> String {
        let ms = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        return ms % 1000 == 0 ? "\(ms / 1000)s" : "\(ms)ms"
    }

    /// Whether `work` ended before `timeout`. Unstructured on purpose: when time is up,
    /// this returns without waiting for `work`, which its caller then cancels.
    private static func firstOf(_ work: @escaping @Sendable () async -> Void, orAfter timeout: Duration) async -> Bool {
        let answered = Mutex(false)
        return await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let resume: @Sendable (Bool) -> Void = { value in
                let first = answered.withLock { done -> Bool in
                    defer { done = true }
                    return !done
                }
                if first { continuation.resume(returning: value) }
            }
            Task {
                await work()
                resume(true)
            }
            Task {
                try? await Task.sleep(for: timeout)
                resume(false)
            }
        }
    }
}

/// The HTTP client webhooks are sent with: one per process, never shut down (as
/// `HTTPClient.shared` is not), but without the pool's own retrying of failed
/// connections, which would wait out the whole attempt timeout on a closed port: the
/// notifier retries itself, with its backoff, within its bounds.
public enum WebhookClient {
    public static let shared: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()
}

/// One hook's POSTs with retries.
struct Deliverer: Sendable {
    let client: HTTPClient
    let policy: WebhookNotifier.Policy

    /// The attempts made and, when it was not delivered, why.
    func post(_ notification: RolloutNotification, to hook: NotificationHook) async -> (Int, String?) {
        let body: [UInt8]
        do { body = try WebhookBody.encode(notification, format: hook.format) } catch { return (0, "cannot encode the body: \(error)") }
        var request = HTTPClientRequest(url: hook.url.absoluteString)
        request.method = .POST
        for (name, value) in hook.headers { request.headers.replaceOrAdd(name: name, value: value) }
        request.headers.replaceOrAdd(name: "Content-Type", value: "application/json")
        request.headers.replaceOrAdd(name: "User-Agent", value: "baton/\(ControllerVersion.current)")
        if let secret = hook.secret {
            request.headers.replaceOrAdd(name: WebhookBody.signatureHeader, value: WebhookBody.signature(body, secret: secret))
        }
        request.body = .bytes(ByteBuffer(bytes: body))
        var backoff = policy.firstBackoff
        var failure = "not attempted"
        for attempt in 1...policy.attempts {
            if Task.isCancelled { return (attempt - 1, "cancelled: \(failure)") }
            let answer = await once(request)
            switch answer {
            case .delivered: return (attempt, nil)
            case .refused(let reason):
                return (attempt, reason)
            case .retry(let reason):
                failure = reason
            }
            if attempt < policy.attempts {
                try? await Task.sleep(for: backoff)
                backoff *= 2
            }
        }
        return (policy.attempts, "\(failure) (after \(policy.attempts) attempts)")
    }

    enum Answer {
        case delivered
        case retry(String)
        case refused(String)
    }

    private func once(_ request: HTTPClientRequest) async -> Answer {
        let timeout = TimeAmount.nanoseconds(Int64(policy.attemptTimeout.components.seconds) * 1_000_000_000
            + policy.attemptTimeout.components.attoseconds / 1_000_000_000)
        do {
            let response = try await client.execute(request, timeout: timeout)
            // Read (and drop) the answer so the connection can be reused.
            _ = try? await response.body.collect(upTo: 64 * 1024)
            let status = Int(response.status.code)
            switch status {
            case 200..<300: return .delivered
            case 408, 429, 500...: return .retry("HTTP \(status)")
            default: return .refused("HTTP \(status)")
            }
        } catch {
            return .retry(String(describing: error))
        }
    }
}
