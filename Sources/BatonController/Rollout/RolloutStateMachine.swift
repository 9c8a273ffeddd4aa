import BatonProtocol
import Foundation

/// Every decision of a rollout, with no I/O and no clock of its own: which hosts to ask,
/// which to deploy and when (canary, batches, width, max-unavailable), when to halt
/// (a canary failure, the failure threshold, an interrupt, a lost lock), when to pause,
/// which hosts to revert to which approved manifest, and how the rollout ended.
///
/// ``RolloutRunner`` feeds it ``Event``s (what agents answered, with the time) and
/// performs the ``Action``s it returns; the tests feed it events directly.
public struct RolloutStateMachine: Sendable {
    enum Mode: Equatable { case run, abort }

    /// Where the rollout is; each stage waits for one kind of answer.
    enum Stage: Equatable {
        case idle
        case querying(remaining: Set<String>)
        case checkingLockBeforeWave(Int)
        case inWave(Int, queue: [String], running: Set<String>)
        case pausing(next: Int, until: Date)
        /// The canary wave `Int` ended healthy; its analysis is under way.
        case analysing(Int)
        case checkingLockBeforeRevert
        case reverting(remaining: Set<String>)
        case finished
    }

    let rolloutID: String
    let manifest: Manifest
    /// The selected hosts, in fleet order.
    let hostIDs: [String]
    let strategy: RolloutStrategy
    let knownPrevious: [String: String]
    /// Whether the controller has the artifact's bytes to upload.
    let hasArtifactFile: Bool
    /// The key id of the controller's signing key, nil when it has none (then a halted
    /// rollout cannot revert).
    let revertKeyID: String?

    var mode = Mode.run
    var stage = Stage.idle
    var results: [String: HostResult] = [:]
    var priorStatus: [String: AppStatus] = [:]
    /// The reachable hosts after the query, split into waves.
    var waves: [(name: String, isCanary: Bool, hosts: [String])] = []
    var halted = false
    var haltReason: String?
    var lockLost = false
    var paused = false
    var failures = 0
    var revertSerial: UInt64?
    var startedAt: Date?
    /// The actions of the event being handled.
    var actions: [Action] = []

    public init(request: RolloutRequest) {
        rolloutID = request.rolloutID
        manifest = request.manifest
        hostIDs = request.hosts.map(\.id)
        strategy = request.strategy
        knownPrevious = request.knownPrevious
        hasArtifactFile = request.artifactFile != nil
        revertKeyID = request.revertKey?.keyid
        for id in hostIDs { results[id] = HostResult(host: id) }
    }

    var total: Int { hostIDs.count }

    /// The host's state as the machine sees it.
    public func result(_ host: String) -> HostResult? { results[host] }

    /// Takes one event; returns what to do about it, in order.
    public mutating func handle(_ event: Event) -> [Action] {
        actions = []
        guard stage != .finished else { return [] }
        switch event {
        case .start(let now):
            guard stage == .idle else { break }
            start(.run, now: now)
        case .abort(let reason, let now):
            guard stage == .idle else { break }
            haltReason = reason
            start(.abort, now: now)
        case .statusAnswered(let host, let status, let now):
            guard case .querying(var remaining) = stage, remaining.remove(host) != nil else { break }
            if let status {
                priorStatus[host] = status
                // A host already on the release (a resumed rollout) goes back to what it
                // ran before, not to the release itself.
                results[host]!.previousRelease = status.current == manifest.release
                    ? (knownPrevious[host] ?? status.previous) : status.current
            }
            stage = .querying(remaining: remaining)
            if remaining.isEmpty { queried(now: now) }
        case .statusFailed(let host, let error, let now):
            guard case .querying(var remaining) = stage, remaining.remove(host) != nil else { break }
            finish(host, HostPhase(callError: error), error: error.info, now: now)
            stage = .querying(remaining: remaining)
            if remaining.isEmpty { queried(now: now) }
        case .uploadProgress(let host, let message, let now):
            set(host, .uploading, message: message, now: now)
        case .accepted(let host, let deploymentID, let existing, let now):
            accepted(host, deploymentID: deploymentID, existing: existing, now: now)
        case .agentEvent(let host, let agentEvent, let now):
            self.agentEvent(host, agentEvent, now: now)
        case .hostFinished(let host, let phase, let error, let deploymentID, let now):
            hostFinished(host, phase: phase, error: error, deploymentID: deploymentID, now: now)
        case .revertFinished(let host, let end, let now):
            revertFinished(host, end: end, now: now)
        case .interrupt(let reason, let now):
            halt(reason, now: now)
            haltedWhileWaiting(now: now)
        case .lockLost(let reason, let now):
            lockLost = true
            halt(reason, now: now)
            haltedWhileWaiting(now: now)
        case .lockChecked(let holds, let now):
            lockChecked(holds: holds, now: now)
        case .pauseElapsed(let now):
            guard case .pausing(let next, _) = stage else { break }
            nextWave(next, now: now)
        case .analysisPassed(let report, let now):
            analysed(report, now: now)
        case .analysisFailed(let report, let now):
            analysed(report, now: now)
        case .analysisInconclusive(let report, let now):
            analysed(report, now: now)
        }
        return actions
    }

    // MARK: Querying

    mutating func start(_ mode: Mode, now: Date) {
        self.mode = mode
        startedAt = now
        switch mode {
        case .run:
            emit(.started, message: "rollout \(rolloutID): \(manifest.app) \(manifest.release) (serial \(manifest.serial)) to \(total) host(s) in \(manifest.environment); \(strategy.summary)", now: now)
        case .abort:
            emit(.started, message: "aborting rollout \(rolloutID): hosts on \(manifest.release) go back to their previous release", now: now)
        }
        for id in hostIDs { set(id, .querying, message: "asking for the current state of \(manifest.app)", now: now) }
        stage = .querying(remaining: Set(hostIDs))
        if hostIDs.isEmpty {
            queried(now: now)
        } else {
            actions.append(.query(hostIDs))
        }
    }

    /// Every host answered (or did not): plan the waves, or for an abort, the revert.
    mutating func queried(now: Date) {
        let reachable = hostIDs.filter { results[$0]!.phase == .querying }
        if mode == .abort {
            for id in reachable {
                results[id]!.phase = priorStatus[id]?.current == manifest.release ? .succeeded : .skipped
            }
            halt(haltReason ?? "aborted", now: now)
            checkLockBeforeRevert(now: now)
            return
        }
        for id in reachable { results[id]!.phase = .pending }
        waves = strategy.waves(hostCount: reachable.count).map { wave in
            (name: wave.name, isCanary: wave.isCanary, hosts: wave.hosts.map { reachable[$0] })
        }
        if strategy.exceedsThreshold(failed: failures, total: total) {
            halt("\(failures) host(s) unreachable before anything was deployed, over the failure threshold of \(strategy.failureThreshold)", now: now)
        }
        nextWave(0, now: now)
    }

    // MARK: Waves

    /// Each wave starts only while the lock is still this rollout's.
    mutating func nextWave(_ index: Int, now: Date) {
        if halted { return enterHalting(now: now) }
        guard index < waves.count else { return finishRollout(now: now) }
        stage = .checkingLockBeforeWave(index)
        actions.append(.checkLock)
    }

    mutating func startWave(_ index: Int, now: Date) {
        let wave = waves[index]
        for id in wave.hosts { results[id]!.wave = wave.name }
        emit(.wave, wave: wave.name, message: "\(wave.name): \(wave.hosts.joined(separator: ", "))", now: now)
        var queue: [String] = []
        for id in wave.hosts {
            if alreadyOnRelease(id) {
                finish(id, .succeeded, deploymentID: priorStatus[id]?.lastDeploymentID, message: "already on \(manifest.release) with this manifest: not deployed again", now: now)
            } else {
                queue.append(id)
            }
        }
        stage = .inWave(index, queue: queue, running: [])
        fill(now: now)
    }

    /// The deployment of this very manifest already succeeded on the host (a resumed
    /// rollout), so the host counts as succeeded and is not deployed again.
    func alreadyOnRelease(_ host: String) -> Bool {
        guard let status = priorStatus[host] else { return false }
        return status.current == manifest.release && status.activeDeploymentID == nil
            && status.lastPhase == .succeeded && status.lastSerial == manifest.serial
    }

    /// Starts hosts of the wave up to its width; ends the wave once nothing runs.
    mutating func fill(now: Date) {
        guard case .inWave(let index, var queue, var running) = stage else { return }
        let wave = waves[index]
        let width = strategy.width(waveSize: wave.hosts.count, total: total, failedSoFar: failures)
        while !halted, running.count < width, let id = queue.first {
            queue.removeFirst()
            running.insert(id)
            results[id]!.startedAt = now
            let installed = priorStatus[id]?.releaseArtifacts?[manifest.release]?.sha256 == manifest.artifact.sha256
            actions.append(.deploy(host: id, upload: hasArtifactFile && !installed))
        }
        stage = .inWave(index, queue: queue, running: running)
        guard running.isEmpty else { return }
        if !halted, !queue.isEmpty {
            halt("\(failures) host(s) out of service reached --max-unavailable \(strategy.maxUnavailable?.description ?? "")", now: now)
        }
        endWave(index, queue: queue, now: now)
    }

    mutating func hostFinished(_ host: String, phase: HostPhase, error: ErrorInfo?, deploymentID: String?, now: Date) {
        guard case .inWave(let index, let queue, var running) = stage, running.remove(host) != nil else { return }
        stage = .inWave(index, queue: queue, running: running)
        finish(host, phase, error: error, deploymentID: deploymentID,
               message: phase == .succeeded ? "\(manifest.release) is live and healthy" : nil, now: now)
        let wave = waves[index]
        if wave.isCanary, phase.isFailure, !halted {
            halt("the canary failed", now: now)
        } else if !halted, strategy.exceedsThreshold(failed: failures, total: total) {
            halt("\(failures) failed host(s) exceed the failure threshold of \(strategy.failureThreshold) in \(wave.name)", now: now)
        }
        fill(now: now)
    }

    mutating func endWave(_ index: Int, queue: [String], now: Date) {
        for id in queue where results[id]!.phase == .pending {
            finish(id, .skipped, message: "not deployed: the rollout halted", now: now)
        }
        let wave = waves[index]
        let isLast = index == waves.count - 1
        if halted { return enterHalting(now: now) }
        if wave.isCanary, !isLast, strategy.analysis != nil {
            return startAnalysis(index, now: now)
        }
        afterWave(index, now: now)
    }

    /// A healthy wave (and its analysis, for the canary) is behind: pause as asked, or go on.
    mutating func afterWave(_ index: Int, now: Date) {
        let wave = waves[index]
        let isLast = index == waves.count - 1
        if wave.isCanary, strategy.pauseAfterCanary, !isLast {
            paused = true
            skipPending()
            emit(.paused, message: "paused after a healthy canary: `baton rollout resume \(rolloutID)` continues, `baton rollout abort \(rolloutID)` reverts the canary", now: now)
            return finishRollout(now: now)
        }
        if !isLast, let pause = strategy.pause, pause.milliseconds > 0 {
            emit(.wave, wave: wave.name, message: "pausing \(pause) before the next batch", now: now)
            let until = now.addingTimeInterval(pause.seconds)
            stage = .pausing(next: index + 1, until: until)
            actions.append(.waitUntil(until))
            return
        }
        nextWave(index + 1, now: now)
    }

    // MARK: Halting

    /// Halts: no new hosts; what is deploying finishes. Once only: the first reason stays.
    mutating func halt(_ reason: String, now: Date) {
        guard !halted else { return }
        halted = true
        haltReason = reason
        emit(.halted, message: "halted: \(reason)", now: now)
    }

    /// A halt during a `--pause` acts at once rather than when the pause ends; one before
    /// anything started (waiting on the lock before the first wave) waits for that answer.
    mutating func haltedWhileWaiting(now: Date) {
        guard halted, case .pausing = stage else { return }
        actions.append(.cancelWait)
        enterHalting(now: now)
    }

    /// After a halt: the hosts not started are skipped; the switched ones go back, unless
    /// the lock is lost (its new holder decides) or `--no-auto-revert`.
    mutating func enterHalting(now: Date) {
        skipPending()
        checkLockBeforeRevert(now: now)
    }

    /// A lock known to be lost needs no asking: the answer is no.
    mutating func checkLockBeforeRevert(now: Date) {
        stage = .checkingLockBeforeRevert
        if lockLost { return lockChecked(holds: false, now: now) }
        actions.append(.checkLock)
    }

    mutating func lockChecked(holds: Bool, now: Date) {
        if !holds {
            lockLost = true
            halt("the rollout lock was broken or taken over", now: now)
        }
        switch stage {
        case .checkingLockBeforeWave(let index):
            if halted { return enterHalting(now: now) }
            startWave(index, now: now)
        case .checkingLockBeforeRevert:
            if mode == .abort {
                return holds ? startRevert(now: now) : finishRollout(now: now)
            }
            if !holds {
                emit(.revert, message: "not reverting: the rollout lock is no longer this controller's, so its new holder decides", now: now)
                finishRollout(now: now)
            } else if strategy.autoRevert {
                startRevert(now: now)
            } else {
                emit(.revert, message: "not reverting (--no-auto-revert): switched hosts stay on \(manifest.release)", now: now)
                finishRollout(now: now)
            }
        default:
            break
        }
    }

    mutating func skipPending() {
        for id in hostIDs where results[id]!.phase == .pending { results[id]!.phase = .skipped }
    }
}
