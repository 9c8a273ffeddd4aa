import BatonArchive
import BatonProtocol
import Crypto
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Logging

/// The heart of the agent: takes a signed envelope, verifies it, and drives one
/// deployment per app through the phases of `DeploymentStateMachine`, recording every
/// transition before the next step starts (durably where recovery depends on it:
/// docs/durability.md). Accepted deployments run under whoever owns the engine's work:
/// `EngineService` in `batond run`, the caller of `wait(for:)` in `batond apply`. Used
/// by `batond apply` (no network) and by the daemon's API alike.
public actor DeploymentEngine {
    public nonisolated let configuration: AgentConfiguration
    public nonisolated let layout: DataLayout
    public nonisolated let startedAt: Date
    let store: StateStore
    let cache: ArtifactCache
    /// Release trees dropped by retention, removed after the deployment's end.
    nonisolated let trash: ReleaseTrash
    let audit: AuditLog
    let hooks: HookRunner
    let health: HealthChecker
    let logger: Logger
    let now: @Sendable () -> Date
    private(set) var policy: TrustPolicy
    private var lockDescriptor: Int32 = -1
    nonisolated let subscribers = EventSubscribers()
    /// Accepted deployments, in order, for the work loop (`runDeployments`).
    private nonisolated let work: AsyncStream<String>
    private nonisolated let workContinuation: AsyncStream<String>.Continuation
    /// Accepted and not started: the work loop or a waiter (`wait(for:)`) claims each once.
    private var pending: Set<String> = []
    private var running: Set<String> = []
    private var endWaiters: [String: [CheckedContinuation<Void, Never>]] = [:]
    /// The records of deployments in flight, as the engine changes them, and how many
    /// lines each one's event log holds.
    var live: [String: (record: DeploymentRecord, eventLogLines: Int)] = [:]
    /// Work that suspends and must not interleave: submissions (a second one would verify
    /// against the state the first is writing) and record writes (they reach the event
    /// log in the order they were made).
    private var turns: [Turn: TurnQueue] = [:]
    var contexts: [String: RunContext] = [:]
    let uploads = UploadReservations()
    /// The bound on fetches from `artifact.url` running at once (`fetch.maxConcurrent`).
    let fetchSlots: FetchSlots
    /// Refusals of one code from one peer are written once a minute, with a count.
    var refusals = RefusalCoalescer(interval: 60)

    /// Opens the data directory (creating it if needed) and takes its lock: one agent
    /// process per data directory.
    public init(
        configuration: AgentConfiguration, policy: TrustPolicy, logger: Logger,
        now: @escaping @Sendable () -> Date = { Date() }
    ) throws(AgentError) {
        self.configuration = configuration
        self.policy = policy
        self.logger = logger
        self.now = now
        layout = DataLayout(root: configuration.dataDirectory)
        for (path, old) in try layout.create() {
            logger.warning(
                "tightened a data directory that others could read: it held records, manifests or artifacts",
                metadata: ["baton.path": "\(path)", "baton.old_mode": "\(String(old, radix: 8))", "baton.new_mode": "700"])
        }
        store = StateStore(layout: layout)
        cache = ArtifactCache(layout: layout, capacity: configuration.limits.artifactCacheBytes)
        trash = ReleaseTrash(layout: layout)
        fetchSlots = FetchSlots(configuration.fetch.maxConcurrent)
        audit = try AuditLog(layout: layout, now: now(), hostID: configuration.hostID)
        hooks = HookRunner(logger: logger, outputDirectory: layout.hookScratchDirectory)
        health = HealthChecker(hookRunner: hooks, logger: logger)
        startedAt = now()
        (work, workContinuation) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .unbounded)
        lockDescriptor = try Self.lock(layout)
    }

    deinit {
        if lockDescriptor >= 0 { close(lockDescriptor) }
    }

    private static func lock(_ layout: DataLayout) throws(AgentError) -> Int32 {
        let fd = open(layout.lockFile, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw AgentError.io("open \(layout.lockFile)") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            close(fd)
            throw AgentError(
                .agentBusy,
                "another batond is using \(layout.root); stop it first (or, for `batond apply`, deploy through it)")
        }
        return fd
    }

    /// Replaces the trust policy (SIGHUP).
    public func updatePolicy(_ policy: TrustPolicy) { self.policy = policy }

    // MARK: Submitting

    /// Verifies an envelope and starts its deployment. An identical resend answers with
    /// the existing deployment (`existing: true`). `artifactFile` is a local copy of the
    /// artifact (`batond apply`), checked against the manifest before the serial is
    /// consumed; otherwise the artifact must already be in the cache.
    /// `peer` names who sent it (the controller's certificate name; `local` for `batond
    /// apply`), for the audit log.
    public func submit(envelope bytes: [UInt8], artifactFile: String? = nil, peer: String = "local") async throws(RequestError) -> DeploymentAccepted {
        await takeTurn(.submit)
        defer { passTurn(.submit) }
        var queriedApp: String?
        var queriedState: AppState?
        var loadFailure: AgentError?
        let verified: VerifiedManifest
        let store = self.store
        do throws(VerificationError) {
            verified = try ManifestVerifier.verify(
                envelope: bytes, policy: policy, host: configuration.identity,
                history: { app in
                    queriedApp = app
                    switch Result(catching: { () throws(AgentError) in try store.loadApp(app) }) {
                    case .success(let state):
                        queriedState = state
                        loadFailure = store.recordProblem(state)
                    case .failure(let error): loadFailure = error
                    }
                    return queriedState.map { store.verificationHistory($0) } ?? .none
                }, now: now())
        } catch {
            if let loadFailure { throw await refuseCorrupt(bytes, app: queriedApp, loadFailure, peer: peer) }
            if error.code == .duplicate, let app = queriedApp, let state = queriedState, let serial = state.lastSerial {
                let id = DeploymentID.make(app: app, serial: serial)
                let phase = (try? store.loadRecord(id))?.phase ?? .accepted
                await auditRefusal(bytes, app: app, code: "duplicate", message: "identical resend of \(id)", peer: peer)
                return DeploymentAccepted(id: id, phase: phase, existing: true)
            }
            await auditRefusal(bytes, app: queriedApp, code: error.code.rawValue, message: error.message, peer: peer)
            throw RequestError(code: error.code.rawValue, message: error.message)
        }
        if let loadFailure { throw await refuseCorrupt(bytes, app: queriedApp, loadFailure, peer: peer) }

        var manifest = verified.manifest
        if verified.isRollback, let approved = verified.approved {
            // A return runs the manifest its release was approved with. The verifier already
            // refused any other difference; taking the approved one here means nothing but
            // the serial, the validity window and the notes can ever come from the return.
            manifest = Manifest.returning(
                to: approved, serial: manifest.serial, issuedAt: manifest.issuedAt, expiresAt: manifest.expiresAt,
                notes: manifest.notes)
        }
        var state = queriedState ?? AppState(app: manifest.app)
        if let active = state.activeDeploymentID {
            let message = "deployment \(active) of '\(manifest.app)' is still running; wait for it to end"
            await auditRefusal(bytes, app: manifest.app, code: AgentError.Code.deploymentInProgress.rawValue, message: message, peer: peer)
            throw RequestError(code: AgentError.Code.deploymentInProgress.rawValue, message: message)
        }

        let id = DeploymentID.make(app: manifest.app, serial: manifest.serial)
        var staged: LocalArtifactIntake.Staged?
        if let artifactFile {
            // The operator's file is checked before the serial is consumed: the envelope is
            // already verified (so replay protection is untouched), and a wrong --artifact
            // must not burn a signed envelope that is fine with the right file. Nothing is
            // recorded or audited: no deployment began and the host did not change. The
            // same read unpacks it (unless the release is already installed), so the file
            // is read once; no copy goes to the cache, the tree is what the host keeps.
            let installed = state.installed(manifest.release) != nil
                && DurableFiles.isDirectory(layout.releaseDirectory(manifest.app, manifest.release))
            let unpack = installed ? nil : LocalArtifactIntake.Unpack(
                directory: "\(layout.artifactsTemporaryDirectory)/unpack.\(id).\(getpid())",
                format: manifest.artifact.format == .tar ? .tar : .tarGz, limits: extractionLimits,
                durability: configuration.releaseSync)
            let cache = self.cache, artifact = manifest.artifact
            do {
                staged = try await Blocking.run { () throws -> LocalArtifactIntake.Staged? in
                    try LocalArtifactIntake.run(file: artifactFile, artifact: artifact, cache: cache, unpack: unpack)
                }
            } catch let error as AgentError {
                throw RequestError(code: error.reportedCode, message: error.message)
            } catch {
                throw RequestError(code: AgentError.Code.ioError.rawValue, message: "\(error)")
            }
        }

        let time = now()
        let written: DeploymentRecord
        do {
            // The serial is consumed first: from here on, a replay of anything older is refused
            // even if the agent dies in the next instant.
            state.lastSerial = manifest.serial
            state.lastPayloadDigest = verified.payloadDigest
            state.activeDeploymentID = id
            state.updatedAt = time
            try await store.saveApp(state)

            var record = DeploymentRecord(
                id: id, hostID: configuration.hostID, app: manifest.app, release: manifest.release,
                serial: manifest.serial, environment: manifest.environment, payloadDigest: verified.payloadDigest,
                artifactSHA256: manifest.artifact.sha256, signers: verified.signers, isRollback: verified.isRollback,
                previousRelease: currentRelease(manifest.app), phase: .accepted, createdAt: time,
                owner: manifest.owner, notes: manifest.notes, source: manifest.source)
            record.timings = [PhaseTiming(phase: .accepted, startedAt: time)]
            let signers = verified.signers.map { $0.names.first ?? $0.keyid }.joined(separator: ", ")
            var message = "accepted \(manifest.app) \(manifest.release) (serial \(manifest.serial)), signed by \(signers)"
            if verified.isRollback {
                let approval = store.loadApproved(app: manifest.app, release: manifest.release)?.record
                message += ", as a return to a release held here: it runs the manifest approved"
                    + (approval.map { " at serial \($0.serial) by \($0.signers.map { $0.names.first ?? $0.keyid }.joined(separator: ", "))" } ?? "")
            }
            if verified.breakGlass {
                message += ", breaking glass: a change freeze is in force for \(manifest.environment)"
            }
            record.events = [
                DeploymentEvent(
                    sequence: 1, time: time, deploymentID: id, app: manifest.app, release: manifest.release,
                    phase: .accepted, message: message)
            ]
            written = record
            try await Blocking.files { () throws(AgentError) in try store.writeNewRecord(written) }
            await writeCoalescedRefusals(at: time)
            try await audit.appendOffPool(
                AuditEntry(
                    event: "accepted", time: time, hostID: configuration.hostID, app: manifest.app,
                    release: manifest.release, serial: manifest.serial, deploymentID: id,
                    payloadDigest: verified.payloadDigest, signers: verified.signers.map(\.keyid),
                    result: "accepted", message: verified.breakGlass ? message : nil,
                    peer: peer, breakGlass: verified.breakGlass ? true : nil))
        } catch {
            if let staged { DurableFiles.removeTree(staged.directory) }
            throw RequestError(code: error.reportedCode, message: error.message)
        }
        logger.info(
            "deployment accepted",
            metadata: ["baton.app": "\(manifest.app)", "baton.deployment.id": "\(id)", "baton.release": "\(manifest.release)"])

        // Only a manifest accepted under the full threshold becomes a release's approval.
        let approval = verified.isRollback
            ? nil
            : ApprovedRelease(
                app: manifest.app, release: manifest.release, payload: Base64.encode(verified.payload),
                payloadDigest: verified.payloadDigest, signers: verified.signers,
                requiredSignatures: verified.requiredSignatures, serial: manifest.serial, deploymentID: id, approvedAt: time)
        contexts[id] = RunContext(
            id: id, app: manifest.app, release: manifest.release, manifest: manifest, approval: approval,
            artifactFile: artifactFile, staged: staged)
        live[id] = (written, 0)
        pending.insert(id)
        workContinuation.yield(id)
        return DeploymentAccepted(id: id, phase: .accepted, existing: false)
    }

    /// An app whose state or records cannot be read takes no deployment, whatever the
    /// envelope says: writing its state now would replace the evidence a person needs,
    /// and verifying against a history that could not be read would forget its serials.
    private func refuseCorrupt(_ bytes: [UInt8], app: String?, _ error: AgentError, peer: String) async -> RequestError {
        await auditRefusal(bytes, app: app, code: error.reportedCode, message: error.message, peer: peer)
        logger.error(
            "deployment refused: the app's state is unreadable",
            metadata: ["baton.app": "\(app ?? "-")", "baton.code": "\(error.reportedCode)", "error": "\(error.message)"])
        return RequestError(code: error.reportedCode, message: error.message)
    }

    private func auditRefusal(_ bytes: [UInt8], app: String?, code: String, message: String, peer: String) async {
        let time = now()
        await writeCoalescedRefusals(at: time)
        guard refusals.admit(code: code, peer: peer, app: app, message: message, at: time) else { return }
        let envelope = try? Envelope.parse(bytes)
        do {
            try await audit.appendOffPool(
                AuditEntry(
                    event: code == "duplicate" ? "duplicate" : "refused", time: time, hostID: configuration.hostID,
                    app: app, payloadDigest: envelope?.payloadDigest, signers: envelope?.signatures.compactMap(\.keyid),
                    result: code, message: message, peer: peer))
        } catch {
            logger.error("audit log append failed", metadata: ["error": "\(error)"])
        }
    }

    /// Writes the counts of refusals coalesced in intervals that are over (all of them
    /// when `everything`: the agent is stopping).
    func writeCoalescedRefusals(at time: Date, everything: Bool = false) async {
        for (key, window) in refusals.due(at: time, everything: everything) {
            do {
                try await audit.appendOffPool(
                    AuditEntry(
                        event: "refusals", time: time, hostID: configuration.hostID, app: window.app, result: key.code,
                        message: "\(window.suppressed) more '\(key.code)' refusals from \(key.peer) since \(RFC3339.format(window.start)), the last: \(window.lastMessage)",
                        peer: key.peer, count: window.suppressed))
            } catch {
                logger.error("audit log append failed", metadata: ["error": "\(error)"])
            }
        }
    }

    /// The audit chain as the health endpoint and status report it.
    public nonisolated var auditStatus: AuditChainStatus {
        let head = audit.head, problem = audit.problem
        return AuditChainStatus(intact: problem == nil, lines: head.lines, head: head.hash, problem: problem)
    }

    /// The audit head signed with `key`, and the hash of line `line` if asked for.
    public nonisolated func signedAuditHead(key: P256.Signing.PrivateKey, line: Int?) throws -> SignedAuditHead {
        let head = audit.head
        // Whole seconds: the signed text carries the time as RFC 3339 without fractions.
        let time = Date(timeIntervalSince1970: now().timeIntervalSince1970.rounded(.down))
        let text = SignedAuditHead.signedText(hostID: configuration.hostID, lines: head.lines, hash: head.hash, time: time)
        let signature = try key.signature(for: text).derRepresentation
        return SignedAuditHead(
            hostID: configuration.hostID, lines: head.lines, hash: head.hash, time: time,
            signature: Base64.encode(Array(signature)),
            at: line.map { SignedAuditHead.LineHash(line: $0, hash: audit.hash(ofLine: $0)) }, problem: audit.problem)
    }

    /// Called when the agent stops: no count of refusals is left unwritten.
    public func flushAudit() async { await writeCoalescedRefusals(at: now(), everything: true) }

    // MARK: Waiting and reading

    /// Runs the deployments accepted from now on, each in a child task of the caller,
    /// until that task is cancelled (`EngineService` runs it). A deployment cut off by the
    /// cancellation stops between steps, its record left as it is for the reconciliation
    /// at the next start. Call it once: the queue of accepted work has one reader.
    public nonisolated func runDeployments() async {
        await withDiscardingTaskGroup { group in
            for await id in work {
                group.addTask { await self.start(id) }
            }
        }
        await leavePending()
    }

    /// After the work loop stopped: deployments accepted but never started stay as their
    /// records say (accepted), for the reconciliation at the next start.
    private func leavePending() {
        for id in pending.sorted() where !running.contains(id) {
            pending.remove(id)
            ended(id)
            for waiter in endWaiters.removeValue(forKey: id) ?? [] { waiter.resume() }
        }
    }

    /// Runs `id` if nobody has started it yet.
    private func start(_ id: String) async {
        guard pending.remove(id) != nil else { return }
        await execute(id)
    }

    /// Waits until a deployment accepted by this engine has ended, and returns its record.
    /// A deployment nothing has started yet runs here, in the caller's task: without the
    /// work loop (`batond apply`, tests), the waiter is what runs it.
    public func wait(for id: String) async -> DeploymentRecord? {
        if pending.contains(id) {
            await start(id)
        } else if running.contains(id) {
            await withCheckedContinuation { endWaiters[id, default: []].append($0) }
        }
        return try? store.loadRecord(id)
    }

    /// Waits for every accepted deployment, running those nothing has started (tests).
    public func waitForAll() async {
        while let id = pending.first ?? running.first {
            _ = await wait(for: id)
        }
    }

    /// Returns when the release trees dropped by ended deployments are removed
    /// (`batond apply` before it exits, tests): at once when no removal runs.
    public nonisolated func trashEmptied() async { await trash.emptied() }

    /// Whether a deployment is accepted or running.
    public var hasWork: Bool { !pending.isEmpty || !running.isEmpty }

    /// The deployments accepted or running.
    public var inFlight: [String] { (pending.union(running)).sorted() }

    public func record(_ id: String) -> DeploymentRecord? { try? store.loadRecord(id) }

    /// A record, or `state_corrupt` when it is there but cannot be read (the API must not
    /// answer "no such deployment" for evidence it holds).
    public func readRecord(_ id: String) throws(AgentError) -> DeploymentRecord? { try store.loadRecord(id) }

    /// Every event of a deployment from the first, then live ones until it has ended: its
    /// terminal phase recorded and its app's state settled (or until it is cut off by a
    /// shutdown).
    public func events(_ id: String) -> AsyncStream<DeploymentEvent>? {
        let (stream, continuation) = AsyncStream<DeploymentEvent>.makeStream(bufferingPolicy: .unbounded)
        if let entry = live[id] {
            for event in entry.record.events { continuation.yield(event) }
            subscribers.add(id, continuation, delivered: entry.record.events.count)
            return stream
        }
        guard let record = try? store.loadRecord(id) else { return nil }
        for event in record.events { continuation.yield(event) }
        continuation.finish()
        return stream
    }

    public func appStatus(_ app: String) -> AppStatus? { StateReader(layout: layout).appStatus(app) }

    /// The evidence for a held release: the exact approved payload and who approved it.
    public func approvedRelease(app: String, release: String) -> ApprovedRelease? {
        guard Name.isValid(app), Name.isValid(release), let state = try? store.loadApp(app),
            store.heldReleases(state).contains(where: { $0.release.name == release })
        else { return nil }
        return store.loadApproved(app: app, release: release)?.record
    }

    public func apps() -> [AppStatus] { StateReader(layout: layout).apps() }

    /// The release `current` names, read from the symlink itself.
    nonisolated func currentRelease(_ app: String) -> String? { store.currentRelease(app) }

    /// The history needed to verify a manifest for `app` (for `baton plan`-like checks).
    public func history(_ app: String) -> AppHistory {
        (try? store.loadApp(app)).map { store.verificationHistory($0) } ?? .none
    }

    // MARK: Recording

    /// Moves the record to `phase` and appends an event, before anything else happens in
    /// that phase. The phases crash recovery decides on (`switching`: the switch may have
    /// happened; a terminal one: nothing is left to do) rewrite the record's summary
    /// durably; the others are appended to its event log.
    func transition(_ id: String, to phase: DeploymentPhase, _ message: String, error: ErrorInfo? = nil) async {
        await change(id, summary: phase == .switching || phase.isTerminal) { record, time in
            RecordChange(
                time: time, phase: phase,
                event: DeploymentEvent(
                    sequence: record.events.count + 1, time: time, deploymentID: id, app: record.app,
                    release: record.release, phase: phase, message: message, error: error),
                error: error)
        }
    }

    /// Appends an event without changing the phase.
    func note(_ id: String, _ message: String) async {
        await change(id) { record, time in
            RecordChange(
                time: time,
                event: DeploymentEvent(
                    sequence: record.events.count + 1, time: time, deploymentID: id, app: record.app,
                    release: record.release, phase: record.phase, message: message))
        }
    }

    func recordHook(_ id: String, _ run: HookRun) async {
        await change(id) { _, time in RecordChange(time: time, hook: run) }
    }

    func recordAttempts(_ id: String, _ attempts: [HealthAttempt]) async {
        await change(id) { _, time in RecordChange(time: time, attempts: attempts) }
        // A metric measurement is also an event: the controller and `baton logs` show them.
        for attempt in attempts { if let line = attempt.measurementEvent { await note(id, line) } }
    }

    /// Marks a deployment found interrupted at start (a summary: it is what the settling
    /// that follows is about).
    func recordReconciliation(_ id: String, _ message: String) async {
        await change(id, summary: true) { _, time in RecordChange(time: time, reconciliation: message) }
    }

    /// Applies a change to the record in memory at once (the next change builds on it),
    /// then writes it on the blocking pool in turn: appended to the event log, or as a new
    /// summary when `summary`. Subscribers get the new events once it is written.
    private func change(
        _ id: String, summary: Bool = false, _ make: (DeploymentRecord, Date) -> RecordChange
    ) async {
        // A record read back from disk (a deployment settled at start) gets a summary
        // first: after a power loss its log may hold fewer lines than its summary counts,
        // and an append there would be skipped by every reader.
        let summary = summary || live[id] == nil
        guard var entry = live[id] ?? (try? store.loadStoredRecord(id)) else {
            logger.error("deployment record missing", metadata: ["baton.deployment.id": "\(id)"])
            return
        }
        let before = entry.record.events.count
        let change = make(entry.record, now())
        change.apply(to: &entry.record)
        let record = entry.record, lines = entry.eventLogLines
        if !summary { entry.eventLogLines += 1 }
        live[id] = entry

        await takeTurn(.records)
        let store = self.store
        do {
            if summary {
                try await Blocking.files { () throws(AgentError) in try store.writeSummary(record, eventLogLines: lines) }
            } else {
                try await Blocking.files { () throws(AgentError) in try store.appendChange(change, to: id) }
            }
        } catch {
            logger.error("cannot write deployment record", metadata: ["baton.deployment.id": "\(id)", "error": "\(error)"])
        }
        passTurn(.records)

        subscribers.publish(id, events: record.events, end: false)
        for event in record.events.dropFirst(before) {
            logger.info(
                "\(event.message)",
                metadata: [
                    "baton.app": "\(record.app)", "baton.deployment.id": "\(id)", "baton.phase": "\(event.phase.rawValue)",
                    "baton.host": "\(configuration.hostID)",
                ])
        }
    }

    // MARK: Turns

    enum Turn: Hashable { case submit, records }

    /// Waits for `turn`, first come first served.
    private func takeTurn(_ turn: Turn) async {
        if turns[turn, default: TurnQueue()].take() { return }
        await withCheckedContinuation { turns[turn, default: TurnQueue()].wait($0) }
    }

    private func passTurn(_ turn: Turn) { turns[turn]?.pass() }

    // MARK: Running

    private func execute(_ id: String) async {
        running.insert(id)
        if let manifest = contexts[id]?.manifest {
            var machine = DeploymentStateMachine(
                hasBake: manifest.effectiveBake > .zero && manifest.health != nil)
            let step = machine.start()
            await transition(id, to: machine.phase, "fetching artifact sha256:\(manifest.artifact.sha256)")
            await drive(id, machine: &machine, step: step)
        }
        ended(id)
        running.remove(id)
        for waiter in endWaiters.removeValue(forKey: id) ?? [] { waiter.resume() }
        // After the end is recorded, audited, signed and told: the trees this deployment
        // dropped are removed off its path.
        trash.startEmptying()
    }

    /// Forgets a deployment that stopped running and ends its event streams: after its
    /// app's state is settled and its end audited, so a reader that saw a stream end
    /// finds the host as the deployment left it. One cut off by a shutdown ends them
    /// without a terminal event and stays as its record says.
    func ended(_ id: String) {
        if let record = live[id]?.record {
            if !record.phase.isTerminal {
                logger.warning(
                    "deployment left for reconciliation at the next start",
                    metadata: ["baton.app": "\(record.app)", "baton.deployment.id": "\(id)", "baton.phase": "\(record.phase.rawValue)"])
            }
            subscribers.publish(id, events: record.events, end: true)
        }
        // A deployment that ended before its unpack read its cached copy leaves the copy
        // to the cache's least-recently-used order.
        if let digest = contexts[id]?.manifest?.artifact.sha256 { cache.unclaim(digest, by: id) }
        contexts[id] = nil
        live[id] = nil
    }

    /// Performs steps until the machine is done, recording each transition first.
    func drive(_ id: String, machine: inout DeploymentStateMachine, step first: DeploymentStateMachine.Step) async {
        var step = first
        while true {
            // Cancelled (a shutdown past its grace): stop between steps. The record says
            // where the deployment got to, and reconciliation settles it at the next start.
            if Task.isCancelled { return }
            let outcome: DeploymentStateMachine.Outcome
            switch step {
            case .fetch: outcome = await fetch(id)
            case .unpack: outcome = await unpack(id)
            case .prepare: outcome = await prepare(id)
            case .switchOver: outcome = await switchOver(id)
            case .activate: outcome = await activate(id)
            case .check: outcome = await check(id)
            case .bake: outcome = await bake(id)
            case .complete:
                await complete(id)
                return
            case .fail(let error):
                await fail(id, error)
                return
            case .rollBack(let error):
                await note(id, "rolling back: \(error.message)")
                let result = await rollBack(id, cause: error)
                if Task.isCancelled { return }
                _ = machine.advance(result)
                await finishRollback(id, cause: error, outcome: result, phase: machine.phase)
                return
            case .done:
                return
            }
            // A step cut short by the cancellation failed because of it, not on its merits.
            if Task.isCancelled { return }
            let before = machine.phase
            step = machine.advance(outcome)
            if machine.phase != before, !machine.phase.isTerminal {
                await transition(id, to: machine.phase, Self.startMessage(machine.phase))
            }
        }
    }

    static func startMessage(_ phase: DeploymentPhase) -> String {
        switch phase {
        case .unpacking: "unpacking the artifact"
        case .preparing: "running the prepare hook"
        case .switching: "switching current to the new release"
        case .activating: "running the activate hook"
        case .checking: "checking health"
        case .baking: "watching health for the bake period"
        default: phase.rawValue
        }
    }
}

/// What a running deployment carries between steps.
struct RunContext: Sendable {
    let id: String
    let app: String
    let release: String
    /// What runs: for a return, the release's approved manifest with the return's serial.
    /// Nil when a restarted agent settles a deployment whose manifest it no longer needs.
    let manifest: Manifest?
    /// The approval this deployment brings (accepted under the full threshold); nil for a
    /// return, which never replaces the approval it runs.
    let approval: ApprovedRelease?
    let artifactFile: String?
    /// The artifact file, verified and kept in the cache, unpacked in the same read
    /// (`batond apply`): the fetch and unpack steps only take it over.
    var staged: LocalArtifactIntake.Staged? = nil
    /// The release was already installed (a return to an earlier release): no fetch,
    /// unpack or prepare.
    var reuseInstalled = false
}

/// A first-come first-served turn for actor code that suspends in the middle.
struct TurnQueue {
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    /// Takes the turn if it is free.
    mutating func take() -> Bool {
        guard !busy else { return false }
        busy = true
        return true
    }

    /// Queues for the turn; `continuation` is resumed when it is handed over.
    mutating func wait(_ continuation: CheckedContinuation<Void, Never>) { waiting.append(continuation) }

    /// Hands the turn to the next in line, or frees it.
    mutating func pass() {
        if waiting.isEmpty {
            busy = false
        } else {
            waiting.removeFirst().resume()
        }
    }
}
