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

/// Runs one rollout against real agents: query every host, then the canary and the
/// batches with bounded parallelism, halting past the failure threshold, and on a halt
/// reverting every host this rollout switched, all at once, with manifests signed by the
/// controller's key. Reports every step through `emit`; returns the summary.
public actor RolloutRunner {
    let client: any AgentClient
    let request: RolloutRequest
    let emit: @Sendable (RolloutEvent) -> Void
    let clock: @Sendable () -> Date

    var results: [String: HostResult] = [:]
    var priorStatus: [String: AppStatus] = [:]
    var halted = false
    var haltReason: String?
    var failures = 0
    var revertSerial: UInt64?
    let uploadSlots: UploadSlots
    /// Renews and so checks the lock's term; asked before each wave and each revert.
    let holdsLock: (@Sendable () async -> Bool)?
    var lockLost = false
    /// The sleep of a `--pause` between batches: a halt (Ctrl-C, a lost lock) cancels it,
    /// so the rollout acts at once rather than when the pause ends.
    var pauseSleep: Task<Void, Never>?

    public init(client: any AgentClient, request: RolloutRequest, clock: @escaping @Sendable () -> Date = { Date() },
                holdsLock: (@Sendable () async -> Bool)? = nil,
                emit: @escaping @Sendable (RolloutEvent) -> Void) {
        self.client = client
        self.request = request
        self.emit = emit
        self.clock = clock
        self.holdsLock = holdsLock
        uploadSlots = UploadSlots(request.strategy.uploadParallel ?? max(1, request.hosts.count))
        for host in request.hosts { results[host.id] = HostResult(host: host.id) }
    }

    var manifest: Manifest { request.manifest }
    var total: Int { request.hosts.count }

    /// Stops the rollout as a halt would (no new hosts; deployments under way finish;
    /// switched hosts are reverted unless --no-auto-revert): what Ctrl-C does.
    public func interrupt(_ reason: String) {
        halt(reason)
    }

    /// The lock is someone else's now: deploy nothing more and revert nothing, since the
    /// new holder (a resume, an abort, another rollout) acts on these hosts.
    public func lostLock(_ reason: String) {
        lockLost = true
        halt(reason)
    }

    /// False, and the rollout stops, once the lock was broken or taken over.
    func stillHoldsLock() async -> Bool {
        if lockLost { return false }
        guard let holdsLock else { return true }
        if await holdsLock() { return true }
        lostLock("the rollout lock was broken or taken over")
        return false
    }

    /// `baton rollout abort`: every host now on the release goes back at once; nothing
    /// else is deployed.
    public func abort(reason: String) async -> RolloutSummary {
        let startedAt = clock()
        event(.started, message: "aborting rollout \(request.rolloutID): hosts on \(manifest.release) go back to their previous release")
        await queryAll()
        for host in request.hosts where results[host.id]!.phase == .querying {
            if priorStatus[host.id]?.current == manifest.release {
                results[host.id]!.phase = .succeeded
            } else {
                results[host.id]!.phase = .skipped
            }
        }
        halt(reason)
        if await stillHoldsLock() { await revertSwitchedHosts() }
        markAttention()
        var outcome = decideOutcome(paused: false)
        if outcome == .failed || outcome == .succeeded { outcome = .aborted }
        var summary = RolloutSummary(
            rolloutID: request.rolloutID, app: manifest.app, release: manifest.release, serial: manifest.serial,
            environment: manifest.environment, strategy: request.strategy.summary, outcome: outcome, halted: true,
            haltReason: haltReason, startedAt: startedAt, finishedAt: clock(), hosts: request.hosts.map { results[$0.id]! })
        summary.revertSerial = revertSerial
        event(.finished, message: "abort \(summary.outcome.rawValue): \(summary.reverted.count) reverted, \(summary.failed.count) failed")
        return summary
    }

    public func run() async -> RolloutSummary {
        let startedAt = clock()
        event(.started, message: "rollout \(request.rolloutID): \(manifest.app) \(manifest.release) (serial \(manifest.serial)) to \(total) host(s) in \(manifest.environment); \(request.strategy.summary)")
        await queryAll()
        let reachable = request.hosts.filter { results[$0.id]!.phase == .querying }
        for host in reachable { results[host.id]!.phase = .pending }
        if request.strategy.exceedsThreshold(failed: failures, total: total) {
            halt("\(failures) host(s) unreachable before anything was deployed, over the failure threshold of \(request.strategy.failureThreshold)")
        }

        let waves = request.strategy.waves(hostCount: reachable.count)
        var paused = false
        for (index, wave) in waves.enumerated() where !halted {
            guard await stillHoldsLock() else { break }
            let hosts = wave.hosts.map { reachable[$0] }
            for host in hosts { results[host.id]!.wave = wave.name }
            event(.wave, wave: wave.name, message: "\(wave.name): \(hosts.map(\.id).joined(separator: ", "))")
            await runWave(hosts, isCanary: wave.isCanary, name: wave.name)
            if halted { break }
            if wave.isCanary, request.strategy.pauseAfterCanary, index < waves.count - 1 {
                paused = true
                break
            }
            if index < waves.count - 1, let pause = request.strategy.pause, pause.milliseconds > 0 {
                event(.wave, wave: wave.name, message: "pausing \(pause) before the next batch")
                let sleep = Task { _ = try? await Task.sleep(for: pause.swiftDuration) }
                pauseSleep = sleep
                await sleep.value
                pauseSleep = nil
            }
        }

        if halted {
            for (id, result) in results where result.phase == .pending { results[id]!.phase = .skipped }
            if await !stillHoldsLock() {
                event(.revert, message: "not reverting: the rollout lock is no longer this controller's, so its new holder decides")
            } else if request.strategy.autoRevert {
                await revertSwitchedHosts()
            } else {
                event(.revert, message: "not reverting (--no-auto-revert): switched hosts stay on \(manifest.release)")
            }
        } else if paused {
            for (id, result) in results where result.phase == .pending { results[id]!.phase = .skipped }
            event(.paused, message: "paused after a healthy canary: `baton rollout resume \(request.rolloutID)` continues, `baton rollout abort \(request.rolloutID)` reverts the canary")
        }
        markAttention()
        let outcome = decideOutcome(paused: paused)
        var summary = RolloutSummary(
            rolloutID: request.rolloutID, app: manifest.app, release: manifest.release, serial: manifest.serial,
            environment: manifest.environment, strategy: request.strategy.summary, outcome: outcome, halted: halted,
            haltReason: haltReason, startedAt: startedAt, finishedAt: clock(),
            hosts: request.hosts.map { results[$0.id]! })
        summary.revertSerial = revertSerial
        event(.finished, message: "rollout \(outcome.rawValue): \(summary.succeeded.count) succeeded, \(summary.failed.count) failed, \(summary.reverted.count) reverted, \(summary.unreachable.count) unreachable, \(summary.skipped.count) not deployed")
        return summary
    }

    /// What the agents know before anything changes: current release, last serial, and
    /// the artifacts of releases on disk (for reverts).
    func queryAll() async {
        for host in request.hosts { set(host.id, .querying, message: "asking for the current state of \(manifest.app)") }
        let app = manifest.app
        let client = self.client
        await withTaskGroup(of: (String, Result<AppStatus?, AgentCallError>).self) { group in
            for host in request.hosts {
                group.addTask { (host.id, await client.appStatusResult(host, app: app)) }
            }
            for await (id, result) in group {
                switch result {
                case .success(let status):
                    if let status {
                        priorStatus[id] = status
                        // A host already on the release (a resumed rollout) goes back to
                        // what it ran before, not to the release itself.
                        results[id]!.previousRelease = status.current == manifest.release
                            ? (request.knownPrevious[id] ?? status.previous) : status.current
                    }
                case .failure(let error):
                    finish(id, error.kind == .unreachable ? .unreachable : .failed, error: error.info)
                }
            }
        }
    }

    /// One wave, at most `width` hosts at a time; stops starting hosts once halted.
    func runWave(_ hosts: [Fleet.Host], isCanary: Bool, name: String) async {
        var queue = hosts[...]
        await withTaskGroup(of: Void.self) { group in
            var running = 0
            while true {
                let width = request.strategy.width(waveSize: hosts.count, total: total, failedSoFar: failures)
                while !halted, running < width, let host = queue.first {
                    queue = queue.dropFirst()
                    running += 1
                    group.addTask { await self.deploy(host) }
                }
                if running == 0 {
                    if !halted, !queue.isEmpty {
                        halt("\(failures) host(s) out of service reached --max-unavailable \(request.strategy.maxUnavailable?.description ?? "")")
                    }
                    break
                }
                await group.next()
                running -= 1
                if isCanary, failures > 0, !halted {
                    halt("the canary failed")
                } else if !halted, request.strategy.exceedsThreshold(failed: failures, total: total) {
                    halt("\(failures) failed host(s) exceed the failure threshold of \(request.strategy.failureThreshold) in \(name)")
                }
            }
        }
        for host in queue where results[host.id]!.phase == .pending {
            finish(host.id, .skipped, message: "not deployed: the rollout halted")
        }
    }

    /// One host: upload where missing, post the envelope, follow its events to the end.
    func deploy(_ host: Fleet.Host) async {
        results[host.id]!.startedAt = clock()
        let artifact = manifest.artifact
        do {
            let installed = priorStatus[host.id]?.releaseArtifacts?[manifest.release]?.sha256 == artifact.sha256
            if let file = request.artifactFile, !installed {
                try await upload(host, file: file, artifact: artifact)
            }
            let accepted = try await client.submit(host, envelope: request.envelope)
            results[host.id]!.deploymentID = accepted.id
            set(host.id, .accepted, deploymentID: accepted.id,
                message: accepted.existing ? "the agent already has this deployment (\(accepted.id))" : "accepted as \(accepted.id)")
            let record = try await client.follow(host, deploymentID: accepted.id) { [weak self] agentEvent in
                await self?.agentEvent(host.id, agentEvent)
            }
            finish(host.id, HostPhase(record.phase), error: record.error, deploymentID: record.id,
                   message: record.phase == .succeeded ? "\(manifest.release) is live and healthy" : (record.error?.message ?? record.phase.rawValue))
        } catch {
            finish(host.id, error.kind == .unreachable ? .unreachable : .failed, error: error.info)
        }
    }

    /// HEAD, and PUT where missing, within the rollout's bound on concurrent uploads; the
    /// events between "checking" and "uploaded" are the time the host holds a slot.
    func upload(_ host: Fleet.Host, file: String, artifact: ArtifactReference) async throws(AgentCallError) {
        if !(await uploadSlots.tryAcquire()) {
            set(host.id, .uploading, message: "waiting for an upload slot (\(uploadSlots.count) at a time)")
            await uploadSlots.acquire()
        }
        set(host.id, .uploading, message: "checking for artifact sha256:\(artifact.sha256.prefix(12))")
        let result = await client.uploadArtifactResult(host, file: file, sha256: artifact.sha256, size: artifact.size)
        if case .success(let sent) = result {
            set(host.id, .uploading, message: sent ? "uploaded \(artifact.size) bytes" : "the agent already holds the artifact")
        }
        await uploadSlots.release()
        _ = try result.get()
    }

    func agentEvent(_ host: String, _ agentEvent: DeploymentEvent) {
        // Terminal phases are reported by `finish`, once, with the record's error.
        guard !agentEvent.phase.isTerminal else { return }
        set(host, HostPhase(agentEvent.phase), deploymentID: agentEvent.deploymentID, message: agentEvent.message, error: agentEvent.error)
    }

    // MARK: Halting and reverting

    func halt(_ reason: String) {
        guard !halted else { return }
        halted = true
        haltReason = reason
        pauseSleep?.cancel()
        event(.halted, message: "halted: \(reason)")
    }

    /// Hosts this rollout moved to the new release go back to the release that was live
    /// before, all at once (no canary, no batches): the revert must be fast. Each revert is
    /// the manifest that release was approved with (the agent serves it), with a new
    /// serial, signed by the controller's key alone (`rollbackThreshold`), and
    /// health-checked by the agent with the approved hooks and checks.
    func revertSwitchedHosts() async {
        let switched = request.hosts.filter { results[$0.id]!.phase == .succeeded }
        guard !switched.isEmpty else {
            event(.revert, message: "nothing to revert: no host was switched to \(manifest.release)")
            return
        }
        guard let key = request.revertKey else {
            for host in switched {
                results[host.id]!.error = ErrorInfo(
                    code: "revert_unsigned", message: "no controller signing key is configured, so the revert could not be signed")
                results[host.id]!.needsAttention = true
            }
            event(.revert, message: "cannot revert \(switched.count) host(s): no controller signing key (signingKey in the controller configuration)")
            return
        }
        let serial = max(manifest.serial, priorStatus.values.compactMap(\.lastSerial).max() ?? 0) + 1
        revertSerial = serial
        var envelopes: [String: [UInt8]] = [:]
        var plans: [(Fleet.Host, String)] = []
        for host in switched {
            let target = ReturnTarget.resolve(
                host: host.id, app: manifest.app, release: results[host.id]!.previousRelease, status: priorStatus[host.id])
            guard case .success(let held) = target else {
                if case .failure(let error) = target { results[host.id]!.error = error }
                results[host.id]!.needsAttention = true
                set(host.id, .succeeded, message: "cannot revert: \(results[host.id]!.error?.message ?? "no earlier release")")
                continue
            }
            // One envelope per approved manifest: the revert is that manifest with a new
            // serial, validity and reason, so the agent runs exactly what was approved.
            let groupKey = held.approvedPayloadDigest
            if envelopes[groupKey] == nil {
                let now = clock()
                let revert = Manifest.returning(
                    to: held.approved, serial: serial, issuedAt: now, expiresAt: now.addingTimeInterval(ReturnTarget.validity.seconds),
                    notes: "revert of \(manifest.release) by rollout \(request.rolloutID): \(haltReason ?? "halted")")
                guard let payload = try? BatonJSON.encode(revert) else { continue }
                var envelope = Envelope(payloadType: Manifest.payloadType, payload: Array(payload))
                envelope.sign(with: key)
                envelopes[groupKey] = Array(envelope.serialized(pretty: false))
            }
            plans.append((host, groupKey))
        }
        event(.revert, message: "reverting \(plans.count) host(s) to their previous release at once (serial \(serial), signed by keyid \(key.keyid.prefix(12)))")
        await withTaskGroup(of: Void.self) { group in
            for (host, groupKey) in plans {
                let envelope = envelopes[groupKey]!
                group.addTask { await self.revert(host, envelope: envelope) }
            }
        }
    }

    func revert(_ host: Fleet.Host, envelope: [UInt8]) async {
        let previous = results[host.id]!.previousRelease ?? "?"
        set(host.id, .reverting, message: "reverting to \(previous)")
        do {
            let accepted = try await client.submit(host, envelope: envelope)
            results[host.id]!.revertDeploymentID = accepted.id
            let record = try await client.follow(host, deploymentID: accepted.id) { [weak self] agentEvent in
                guard !agentEvent.phase.isTerminal else { return }
                await self?.set(host.id, .reverting, deploymentID: agentEvent.deploymentID, message: "revert: \(agentEvent.phase.rawValue): \(agentEvent.message)")
            }
            if record.phase == .succeeded {
                finish(host.id, .reverted, deploymentID: record.id, message: "back on \(previous), healthy")
            } else {
                results[host.id]!.needsAttention = true
                finish(host.id, .revertFailed, error: record.error, deploymentID: record.id,
                       message: "revert to \(previous) ended \(record.phase.rawValue)")
            }
        } catch {
            results[host.id]!.needsAttention = true
            finish(host.id, .revertFailed, error: error.info, message: "revert to \(previous) failed: \(error.info.message)")
        }
    }

    // MARK: Outcome

    func markAttention() {
        for (id, result) in results where [.unreachable, .rollbackFailed, .revertFailed].contains(result.phase)
            || ["agent_tls_failed", "agent_identity_mismatch"].contains(result.error?.code ?? "")
        {
            results[id]!.needsAttention = true
        }
    }

    func decideOutcome(paused: Bool) -> RolloutOutcome {
        if lockLost { return .abandoned }
        if results.values.contains(where: \.needsAttention) { return .needsAttention }
        if paused { return .paused }
        if results.values.allSatisfy({ $0.phase == .succeeded }) { return .succeeded }
        return .failed
    }

    // MARK: Reporting

    func set(_ host: String, _ phase: HostPhase, deploymentID: String? = nil, message: String = "", error: ErrorInfo? = nil) {
        results[host]!.phase = phase
        event(.host, host: host, phase: phase, deploymentID: deploymentID, message: message.isEmpty ? phase.rawValue : message, error: error)
    }

    func finish(_ host: String, _ phase: HostPhase, error: ErrorInfo? = nil, deploymentID: String? = nil, message: String? = nil) {
        results[host]!.phase = phase
        results[host]!.finishedAt = clock()
        if let error { results[host]!.error = error }
        if phase.isFailure { failures += 1 }
        event(.host, host: host, phase: phase, deploymentID: deploymentID, message: message ?? error?.message ?? phase.rawValue, error: error)
    }

    func event(_ type: RolloutEvent.Kind, host: String? = nil, phase: HostPhase? = nil, wave: String? = nil,
               deploymentID: String? = nil, message: String, error: ErrorInfo? = nil) {
        emit(RolloutEvent(
            type: type, time: clock(), rolloutID: request.rolloutID, host: host, phase: phase,
            wave: wave ?? host.flatMap { results[$0]?.wave }, deploymentID: deploymentID, message: message, error: error))
    }
}
