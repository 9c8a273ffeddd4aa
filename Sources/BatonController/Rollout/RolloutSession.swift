import BatonProtocol
import Foundation
import Synchronization

/// Runs one checked rollout request (or the abort of a recorded one) as this controller
/// process: takes the app's lock for the environment (waiting up to `lockWait`), renews it
/// at a third of the lease, records everything in the history store, shows progress
/// through `progress`, and returns the summary, whose `exitStatus` the CLI exits with.
///
/// Ctrl-C (with `catchesInterrupts`) halts: no new hosts, switched hosts are reverted. A
/// second Ctrl-C stops at once: the rollout is recorded as needing attention and the
/// summary's exit status is 130. The lock, the agent client, the renewal and the signal
/// watcher are let go on every path, a thrown error included.
public struct RolloutSession: Sendable {
    public enum Mode: Sendable {
        case run
        /// `baton rollout abort`: every host on the release goes back; nothing is deployed.
        case abort(reason: String)
    }

    public var history: any HistoryStore
    public var state: ControllerState
    public var makeClient: AgentClientFactory
    public var progress: any ProgressRenderer
    /// Warnings and notices for the operator (a lock taken over, an interrupt); the CLI
    /// writes them to standard error, apart from the progress output.
    public var notify: @Sendable (String) -> Void
    /// How long to wait for a live holder's lock; 0 fails at once with `lock_held`.
    public var lockWait: TimeInterval = 0
    /// The lock's lease, renewed at a third of it (`RolloutLease`: `history.lease` in baton.yaml).
    public var lease: TimeInterval = RolloutLease.defaultSeconds
    /// `user@host`, as the lock and the record name the controller.
    public var owner: String = ControllerActor.current
    public var pid: Int32 = getpid()
    /// Whether SIGINT is this session's to handle; off where the process's signals belong
    /// to someone else (tests).
    public var catchesInterrupts = true
    /// A lock taken by whoever runs several rollouts as one operation (a drill's two
    /// legs): used instead of taking the app's lock, and left held at the end.
    var heldLock: HeldRolloutLock?

    public init(history: any HistoryStore, state: ControllerState, makeClient: @escaping AgentClientFactory,
                progress: any ProgressRenderer, notify: @escaping @Sendable (String) -> Void) {
        self.history = history
        self.state = state
        self.makeClient = makeClient
        self.progress = progress
        self.notify = notify
    }

    /// `signers` are recorded with the rollout (key names or keyids).
    public func run(_ request: RolloutRequest, signers: [String], mode: Mode = .run) async throws(ControllerError) -> RolloutSummary {
        try state.prepare()
        let manifest = request.manifest
        let lock: HeldRolloutLock
        if let heldLock {
            lock = heldLock
        } else {
            lock = try await HeldRolloutLock.acquire(
                LockRequest(app: manifest.app, environment: manifest.environment, rolloutID: request.rolloutID, owner: owner, pid: pid, lease: lease),
                history: history, wait: lockWait, notify: notify)
        }
        let summary: RolloutSummary
        do {
            summary = try await withAgentClient(for: request.hosts, using: makeClient) { client throws(ControllerError) in
                try await drive(request, signers: signers, mode: mode, lock: lock, client: client)
            }
        } catch {
            if heldLock == nil { lock.release() }
            throw error
        }
        if heldLock == nil { lock.release() }
        if summary.exitStatus != RolloutSession.stoppedAtOnce { progress.finish(summary) }
        return summary
    }

    /// The exit status of a rollout stopped by a second Ctrl-C (128 + SIGINT).
    public static let stoppedAtOnce: Int32 = 130

    /// Everything between taking the lock and letting it go: the record, the runner, the
    /// renewal and the interrupts.
    private func drive(
        _ request: RolloutRequest, signers: [String], mode: Mode, lock: HeldRolloutLock, client: any AgentClient
    ) async throws(ControllerError) -> RolloutSummary {
        let manifest = request.manifest
        try? state.recordSerial(app: manifest.app, manifest.serial)
        var record = RolloutRecord(
            id: request.rolloutID, app: manifest.app, release: manifest.release, serial: manifest.serial,
            environment: manifest.environment, strategy: request.strategy.summary, actor: owner,
            signers: signers, owner: manifest.owner, notes: manifest.notes, source: manifest.source, startedAt: Date(),
            hosts: request.hosts.map { HostResult(host: $0.id) })
        record.breakGlass = request.breakGlass
        try history.rolloutStarted(record)
        // Its kind and its release's creation, for delivery metrics (a resumed or aborted
        // rollout's request carries the kind it was recorded with).
        try (history as? any DeliveryHistory)?.noteRollout(id: request.rolloutID, kind: request.kind, issuedAt: manifest.issuedAt)
        if request.breakGlass {
            notify("break glass: a change freeze is in force for \(manifest.environment); this rollout goes out under break-glass signatures and is recorded as such")
        }
        try history.saveResumeInfo(RolloutResumeInfo(
            rolloutID: request.rolloutID, envelope: request.envelope, hostIDs: request.hosts.map(\.id), strategy: request.strategy,
            artifactFile: request.artifactFile))

        // Once stopped at once, the runner may still be winding down: nothing it says after
        // that reaches the record or the screen.
        let closed = Latch()
        let history = self.history
        let progress = self.progress
        let recorder = RolloutEventRecorder(history: history) { events in
            for event in events { progress.handle(event) }
        }
        let runner = RolloutRunner(
            client: client, request: request, holdsLock: { lock.renew() },
            receipts: ReceiptCollector.over(history, rolloutID: request.rolloutID)
        ) { event in
            guard !closed.isSet else { return }
            recorder.add(event)
        }
        let renewal = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(lock.request.lease / 3))
                if Task.isCancelled { break }
                if !lock.renew() {
                    await runner.lostLock("the rollout lock was broken or taken over")
                    break
                }
            }
        }
        defer { renewal.cancel() }

        let (endings, ending) = AsyncStream<RolloutSummary?>.makeStream()
        let notify = self.notify
        var interrupts: InterruptWatcher?
        if catchesInterrupts {
            interrupts = InterruptWatcher { count in
                if count == 1 {
                    notify("interrupted: halting (no new hosts; switched hosts are reverted); Ctrl-C again to stop at once")
                    Task { await runner.interrupt("interrupted by the operator (SIGINT)") }
                } else {
                    ending.yield(nil)
                }
            }
        }
        defer { interrupts?.stop() }
        let running = Task {
            switch mode {
            case .run: ending.yield(await runner.run())
            case .abort(let reason): ending.yield(await runner.abort(reason: reason))
            }
        }
        var next = endings.makeAsyncIterator()
        guard let finished = await next.next() ?? nil else {
            closed.set()
            await recorder.finish()
            _ = running  // left to wind down: the CLI exits with the summary's status
            var summary = RolloutSummary(
                rolloutID: request.rolloutID, app: manifest.app, release: manifest.release, serial: manifest.serial,
                environment: manifest.environment, strategy: request.strategy.summary, outcome: .needsAttention, halted: true,
                haltReason: "stopped at once by a second SIGINT; hosts may be mid-deployment", startedAt: record.startedAt,
                finishedAt: Date(), hosts: record.hosts)
            summary.exitStatus = Self.stoppedAtOnce
            try? history.rolloutFinished(summary)
            notify("stopped; rollout \(request.rolloutID) is recorded as needing attention")
            return summary
        }
        await recorder.finish()
        if let revertSerial = finished.revertSerial {
            try? state.recordSerial(app: manifest.app, revertSerial)
        }
        // An abandoned rollout's record belongs to whoever took the lock over under the same
        // id (`resume`, `abort`): it is marked only if that one has not ended it already.
        if finished.outcome == .abandoned {
            _ = try? history.rolloutAbandoned(id: request.rolloutID, reason: finished.haltReason ?? "the rollout lock was lost", now: Date())
        } else {
            try? history.rolloutFinished(finished)
        }
        return finished
    }
}

/// A flag that goes from unset to set once.
private final class Latch: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set() { value.withLock { $0 = true } }
}
