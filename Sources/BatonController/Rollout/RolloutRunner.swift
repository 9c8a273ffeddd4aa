import BatonProtocol
import Foundation

/// Everything a rollout needs, checked before any agent is contacted (``RolloutPreflight``).
public struct RolloutRequest: Sendable {
    public var rolloutID: String
    /// The signed envelope, sent to every host as is.
    public var envelope: [UInt8]
    public var manifest: Manifest
    /// The selected hosts, in fleet order: the canary is the first of them.
    public var hosts: [Fleet.Host]
    public var strategy: RolloutStrategy
    /// Where the artifact's bytes are (the controller's store or the operator's file); nil
    /// when agents fetch it from `artifact.url` or already hold it.
    public var artifactFile: String?
    /// Signs revert manifests; nil when no controller signing key is configured (then a
    /// halted rollout cannot revert and says so).
    public var revertKey: SigningKey?
    /// For a resumed or aborted rollout: the release each host ran before the rollout
    /// reached it, as first recorded (the agent now reports the new one as current).
    public var knownPrevious: [String: String] = [:]
    /// A change freeze is in force and the envelope is signed to break glass (the
    /// preflight's verdict): recorded with the rollout and announced when it starts.
    public var breakGlass = false
    /// Recorded with the rollout: a rollback's returns, a drill's legs, or a rollout.
    public var kind: RolloutKind = .rollout

    public init(rolloutID: String, envelope: [UInt8], manifest: Manifest, hosts: [Fleet.Host], strategy: RolloutStrategy,
                artifactFile: String?, revertKey: SigningKey?) {
        self.rolloutID = rolloutID
        self.envelope = envelope
        self.manifest = manifest
        self.hosts = hosts
        self.strategy = strategy
        self.artifactFile = artifactFile
        self.revertKey = revertKey
    }

    /// `20261122-153012-web-4f2a1c`: sortable, readable, unique enough to type.
    public static func newID(app: String, now: Date = Date()) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: now)
        let stamp = String(format: "%04d%02d%02d-%02d%02d%02d", c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
        let random = (0..<3).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        return "\(stamp)-\(app)-\(random)"
    }
}

/// Runs one rollout against real agents by performing what ``RolloutStateMachine``
/// decides: queries, deployments with bounded parallelism, pauses, lock checks, and on a
/// halt the reverts, signed here with the controller's key. Every answer goes back to the
/// machine as an event, one at a time, through an inbox; so do `interrupt` and `lostLock`,
/// which therefore act at once even during a `--pause`. Reports every step through
/// `emit`; returns the summary.
public actor RolloutRunner {
    typealias Event = RolloutStateMachine.Event

    let request: RolloutRequest
    let emit: @Sendable (RolloutEvent) -> Void
    let clock: @Sendable () -> Date
    /// Renews and so checks the lock's term; asked before each wave and each revert.
    let holdsLock: (@Sendable () async -> Bool)?
    let calls: RolloutHostCalls
    let hosts: [String: Fleet.Host]
    var machine: RolloutStateMachine
    let inbox: AsyncStream<Event>
    let post: AsyncStream<Event>.Continuation
    /// The sleep of a `--pause` between batches, cancelled when the machine says so.
    var pauseWait: Task<Void, Never>?
    var summary: RolloutSummary?

    public init(client: any AgentClient, request: RolloutRequest, clock: @escaping @Sendable () -> Date = { Date() },
                holdsLock: (@Sendable () async -> Bool)? = nil, receipts: ReceiptCollector? = nil,
                emit: @escaping @Sendable (RolloutEvent) -> Void) {
        self.request = request
        self.emit = emit
        self.clock = clock
        self.holdsLock = holdsLock
        let (inbox, post) = AsyncStream.makeStream(of: Event.self)
        self.inbox = inbox
        self.post = post
        calls = RolloutHostCalls(
            client: client, app: request.manifest.app, envelope: request.envelope, artifact: request.manifest.artifact,
            artifactFile: request.artifactFile,
            uploadSlots: UploadSlots(request.strategy.uploadParallel ?? max(1, request.hosts.count)),
            clock: clock, post: { post.yield($0) }, receipts: receipts)
        hosts = Dictionary(request.hosts.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        machine = RolloutStateMachine(request: request)
    }

    /// Stops the rollout as a halt would (no new hosts; deployments under way finish;
    /// switched hosts are reverted unless --no-auto-revert): what Ctrl-C does.
    public func interrupt(_ reason: String) {
        post.yield(.interrupt(reason: reason, now: clock()))
    }

    /// The lock is someone else's now: deploy nothing more and revert nothing, since the
    /// new holder (a resume, an abort, another rollout) acts on these hosts.
    public func lostLock(_ reason: String) {
        post.yield(.lockLost(reason: reason, now: clock()))
    }

    public func run() async -> RolloutSummary {
        await drive(.start(now: clock()))
    }

    /// `baton rollout abort`: every host now on the release goes back at once; nothing
    /// else is deployed.
    public func abort(reason: String) async -> RolloutSummary {
        await drive(.abort(reason: reason, now: clock()))
    }

    /// Feeds the machine `first`, then every event from the inbox, performing its actions,
    /// until it finishes. The calls run as child tasks, so none outlives the rollout.
    func drive(_ first: Event) async -> RolloutSummary {
        await withTaskGroup(of: Void.self) { group in
            perform(machine.handle(first), in: &group)
            if summary == nil {
                for await event in inbox {
                    perform(machine.handle(event), in: &group)
                    if summary != nil { break }
                }
            }
        }
        pauseWait?.cancel()
        post.finish()
        // The inbox ends only once finished, and the machine finishes with a summary.
        return summary!
    }

    func perform(_ actions: [RolloutStateMachine.Action], in group: inout TaskGroup<Void>) {
        let calls = self.calls
        let post = self.post
        let clock = self.clock
        for action in actions {
            switch action {
            case .emit(let event):
                emit(event)
            case .query(let ids):
                let asked = ids.compactMap { hosts[$0] }
                group.addTask { await calls.query(asked) }
            case .deploy(let id, let upload):
                guard let host = hosts[id] else { continue }
                group.addTask { await calls.deploy(host, upload: upload) }
            case .checkLock:
                let holdsLock = self.holdsLock
                group.addTask {
                    let holds = await holdsLock?() ?? true
                    post.yield(.lockChecked(holds: holds, now: clock()))
                }
            case .waitUntil(let date):
                let delay = max(0, date.timeIntervalSince(clock()))
                pauseWait?.cancel()
                pauseWait = Task {
                    _ = try? await Task.sleep(for: .milliseconds(Int64(delay * 1000)))
                    if !Task.isCancelled { post.yield(.pauseElapsed(now: clock())) }
                }
            case .cancelWait:
                pauseWait?.cancel()
                pauseWait = nil
            case .revert(let plan):
                revert(plan, in: &group)
            case .analyse(let hosts):
                guard let analysis = request.strategy.analysis else { continue }
                group.addTask {
                    let report = await CanaryAnalyzer(analysis: analysis).run(
                        canary: hosts.canary, baseline: hosts.baseline, now: clock())
                    switch report.verdict {
                    case .pass: post.yield(.analysisPassed(report, now: clock()))
                    case .fail: post.yield(.analysisFailed(report, now: clock()))
                    case .inconclusive: post.yield(.analysisInconclusive(report, now: clock()))
                    }
                }
            case .finish(let summary):
                self.summary = summary
            }
        }
    }

    /// Signs each group's return manifest with the controller's key (`rollbackThreshold`)
    /// and sends every host its group's envelope, all at once.
    func revert(_ plan: RolloutStateMachine.RevertPlan, in group: inout TaskGroup<Void>) {
        let calls = self.calls
        for revertGroup in plan.groups {
            let envelope = signed(revertGroup.manifest)
            for host in revertGroup.hosts.compactMap({ hosts[$0] }) {
                guard let envelope else {
                    post.yield(.revertFinished(host: host.id, end: .callFailed(ErrorInfo(
                        code: AgentCallError.Code.revertUnsigned.rawValue, message: "the revert manifest could not be signed")), now: clock()))
                    continue
                }
                group.addTask { await calls.revert(host, envelope: envelope) }
            }
        }
    }

    func signed(_ manifest: Manifest) -> [UInt8]? {
        guard let key = request.revertKey else { return nil }
        return try? Envelope.signing(manifest, with: key)
    }
}
