import BatonProtocol
import Foundation

/// `baton drill`: practises the way back on a few hosts. Under the app's rollout lock it
/// returns each host to the release live before its current one (the return `baton
/// rollback` sends: that release's approved manifest, signed by the controller's key under
/// `rollbackThreshold`), which its agent health-checks, then returns it to the release it
/// was on, again by that release's approved manifest. Each leg is a rollout of kind `drill`
/// in the history; the drill itself is a ``DrillRecord`` with the time to recover.
///
/// A drill never leaves a host on another release: SIGINT and SIGTERM stop it from going
/// further back, never from coming forward; a host whose agent went away is waited for (up
/// to `recoveryWait`) and put back; whatever is still not on its release is named in the
/// record as needing attention, with the command that puts it back.
public struct Drill: Sendable {
    public var app: String
    public var environment: String
    /// The hosts drilled.
    public var hosts: [Fleet.Host]
    /// The controller's key, checked by ``RollbackPreparation/signingKey(_:environment:policy:)``.
    public var key: SigningKey
    public var policy: TrustPolicy?
    public var history: any HistoryStore & DeliveryHistory
    public var state: ControllerState
    public var makeClient: AgentClientFactory
    /// Progress of one leg, for its hosts.
    public var legProgress: @Sendable ([String]) -> any ProgressRenderer
    /// What the drill is doing, for the operator.
    public var say: @Sendable (String) -> Void
    /// How long to wait for an agent that stopped answering, or is still settling a
    /// deployment, before the drill gives up on putting its host back.
    public var recoveryWait: TimeInterval = 60
    /// Whether SIGINT and SIGTERM are the drill's to handle; off in tests that run it in process.
    public var catchesSignals = true
    public var lockWait: TimeInterval = 0
    public var lease: TimeInterval = 60
    public var owner: String = ControllerActor.current
    public var pid: Int32 = getpid()

    public init(
        app: String, environment: String, hosts: [Fleet.Host], key: SigningKey, policy: TrustPolicy?,
        history: any HistoryStore & DeliveryHistory, state: ControllerState, makeClient: @escaping AgentClientFactory,
        legProgress: @escaping @Sendable ([String]) -> any ProgressRenderer, say: @escaping @Sendable (String) -> Void
    ) {
        self.app = app
        self.environment = environment
        self.hosts = hosts
        self.key = key
        self.policy = policy
        self.history = history
        self.state = state
        self.makeClient = makeClient
        self.legProgress = legProgress
        self.say = say
    }

    /// The exit status of a drill: 0 succeeded, 1 failed (every host back), 3 a host needs
    /// attention, 128 + the signal when interrupted (every host back).
    public static func exitStatus(_ record: DrillRecord, signal: Int32?) -> Int32 {
        switch record.outcome {
        case .succeeded: 0
        case .failed: 1
        case .interrupted: 128 + (signal ?? SIGINT)
        case .needsAttention, nil: 3
        }
    }

    /// Runs the drill. Throws ``DrillError`` or ``ControllerError`` (`lock_held`,
    /// `state_error`) before any host is changed (but for `drill_unfinished`, thrown when a
    /// host the last drill left behind could not be put back); once this drill changes
    /// hosts, every ending is a record.
    public func run() async throws -> (record: DrillRecord, signal: Int32?) {
        if let freeze = policy?.activeFreeze(of: environment, at: Date()) {
            throw DrillError(
                .changeFrozen,
                "\(freeze.summary); a drill is a change by choice, so it waits for the freeze to lift (the way back itself, `baton rollback`, is never frozen)")
        }
        let id = "drill-" + RolloutRequest.newID(app: app)
        let lock = try await HeldRolloutLock.acquire(
            LockRequest(app: app, environment: environment, rolloutID: id, owner: owner, pid: pid, lease: lease),
            history: history, wait: lockWait, notify: say)
        defer { lock.release() }
        // From here on a signal never stops the drill part-way.
        let announce = self.say
        let signals = catchesSignals
            ? DrillSignals { number in
                announce("\(number == SIGTERM ? "SIGTERM" : "SIGINT") received: the drill puts every host back on the release it found, then stops")
            }
            : nil
        defer { signals?.stop() }

        var (statuses, unreachable) = try await ask(hosts)
        if try await finishLeftovers(of: id, statuses: statuses, lock: lock) {
            (statuses, unreachable) = try await ask(hosts)
        }
        var record = DrillRecord(
            id: id, app: app, environment: environment, actor: owner, startedAt: Date(),
            hosts: try planned(statuses: statuses, unreachable: unreachable))
        try history.saveDrill(record)

        if signals?.received == nil {
            await goBack(&record, statuses: statuses, lock: lock)
        }
        let settled = await settle(lock: lock)
        await comeForward(&record, statuses: settled.statuses, lock: lock)
        let final = await settle(lock: lock)
        finish(&record, final: final, signal: signals?.received)
        try history.saveDrill(record)
        return (record, signals?.received)
    }

    // MARK: Before anything changes

    /// What the last drill of the app in the environment left undone, when it ended needing
    /// attention or never ended (its controller was killed): each of this drill's hosts that
    /// is not on the release it was on before that drill goes back to it first, and that
    /// drill's record says so. True when it changed a record; `drill_unfinished` when a
    /// host could not be put back (this drill then changes nothing more).
    func finishLeftovers(of id: String, statuses: [String: AppStatus], lock: HeldRolloutLock) async throws -> Bool {
        guard var last = try history.drills(app: app, environment: environment, limit: 1).first,
              last.outcome == nil || last.outcome == .needsAttention
        else { return false }
        let selected = Set(hosts.map(\.id))
        let away = last.hosts.filter { host in
            selected.contains(host.host) && statuses[host.host].map { $0.current != host.original } == true
        }
        let before = last.outcome == nil ? "did not end (its controller stopped)" : "ended needing attention"
        if away.isEmpty {
            guard last.outcome == nil else { return false }
            last.outcome = .failed
            last.reason = "its controller stopped before the drill ended; drill \(id) found every host it asked on the release it was on"
            try history.saveDrill(last)
            return true
        }
        say("drill \(last.id) \(before): \(away.map { "\($0.host) is on \(statuses[$0.host]?.current ?? "?"), was on \($0.original ?? "?")" }.joined(separator: ", ")); putting it back first")
        await comeForward(&last, statuses: statuses, lock: lock)
        let after = await settle(lock: lock)
        for index in last.hosts.indices where selected.contains(last.hosts[index].host) {
            let current = after.statuses[last.hosts[index].host]?.current
            last.hosts[index].final = current
            last.hosts[index].needsAttention = current != last.hosts[index].original
        }
        let still = last.attention.filter { selected.contains($0.host) }
        last.finishedAt = last.finishedAt ?? Date()
        last.outcome = last.attention.isEmpty ? .failed : .needsAttention
        let put = away.filter { host in !still.contains { $0.host == host.host } }.map(\.host)
        last.reason = ([last.reason] + [put.isEmpty ? nil : "drill \(id) put \(put.joined(separator: ", ")) back on the release it was on"])
            .compactMap { $0 }.joined(separator: "; ")
        try history.saveDrill(last)
        if !still.isEmpty {
            throw DrillError(
                .drillUnfinished,
                "drill \(last.id) left \(still.map { "\($0.host) on \($0.final ?? "?") (it was on \($0.original ?? "?"))" }.joined(separator: ", ")) and putting it back failed; put it back with `baton rollback \(app) --environment \(environment) --to RELEASE --hosts HOST`, then drill again")
        }
        return true
    }

    /// Each host's release now and the one before it, or why the host cannot be drilled:
    /// it must answer, be idle, hold the previous release's approved manifest (the way
    /// back) and its current one's (the way forward again).
    func planned(statuses: [String: AppStatus], unreachable: [(host: String, error: ErrorInfo)]) throws(DrillError) -> [DrillRecord.Host] {
        if let silent = unreachable.first {
            throw DrillError(.hostUnreachable, "\(silent.host) did not answer (\(silent.error.code): \(silent.error.message)); nothing was changed")
        }
        var planned: [DrillRecord.Host] = []
        for host in hosts {
            let status = statuses[host.id]
            if let error = status?.stateError {
                throw DrillError(.stateCorrupt, "\(host.id) cannot read its state of \(app): \(error.message)")
            }
            if let active = status?.activeDeploymentID {
                throw DrillError(.hostBusy, "\(host.id) is running deployment \(active) of \(app); drill once it has finished")
            }
            if case .failure(let error) = ReturnTarget.resolve(host: host.id, app: app, release: status?.previous, status: status) {
                throw DrillError(returnRefusal: error)
            }
            guard let status, let current = status.current else {
                throw DrillError(.appUnknown, "\(host.id) runs no release of \(app)")
            }
            if case .failure(let error) = ReturnTarget.resolve(host: host.id, app: app, release: current, named: true, status: status) {
                throw DrillError(
                    .currentNotHeld,
                    "\(host.id) does not hold \(current) with its approved manifest, so a drill could not bring it back to \(current) under the rollback threshold (\(error.message))")
            }
            planned.append(DrillRecord.Host(host: host.id, original: current, previous: status.previous))
        }
        return planned
    }

    // MARK: The two legs

    /// Every host to the release live before its current one, at once, health-checked by
    /// its agent.
    func goBack(_ record: inout DrillRecord, statuses: [String: AppStatus], lock: HeldRolloutLock) async {
        say("drill \(record.id): \(record.hosts.map { "\($0.host) \($0.original ?? "?") → \($0.previous ?? "?")" }.joined(separator: ", ")) (the way back)")
        let plan = RollbackPlan.make(
            app: app, environment: environment, to: nil, hosts: hosts, statuses: statuses,
            controllerSerial: state.lastSerial(app: app), key: key, notes: "drill \(record.id) by \(owner): the way back")
        for (host, error) in plan.refused { update(&record, host) { $0.error = error } }
        for group in plan.groups {
            switch await leg(group, lock: lock) {
            case .success(let summary):
                record.rollouts.append(summary.rolloutID)
                for result in summary.hosts {
                    update(&record, result.host) { host in
                        host.back = result.phase
                        host.error = result.error
                        if result.phase == .succeeded {
                            let start = result.startedAt ?? summary.startedAt
                            host.timeToRecover = (result.finishedAt ?? summary.finishedAt).timeIntervalSince(start)
                        }
                    }
                }
            case .failure(let error):
                for host in group.hosts { update(&record, host.id) { $0.error = error.errorInfo } }
            }
        }
    }

    /// Every host not on the release it was on before the drill back to it, by that
    /// release's approved manifest.
    func comeForward(_ record: inout DrillRecord, statuses: [String: AppStatus], lock: HeldRolloutLock) async {
        let away = record.hosts.filter { host in statuses[host.host].map { $0.current != host.original } ?? false }
        guard !away.isEmpty else { return }
        say("drill \(record.id): \(away.map { "\($0.host) → \($0.original ?? "?")" }.joined(separator: ", ")) (forward again)")
        for (release, drilled) in Dictionary(grouping: away, by: { $0.original ?? "" }).sorted(by: { $0.key < $1.key }) {
            let groupHosts = hosts.filter { host in drilled.contains { $0.host == host.id } }
            let plan = RollbackPlan.make(
                app: app, environment: environment, to: release, hosts: groupHosts, statuses: statuses,
                controllerSerial: state.lastSerial(app: app), key: key, notes: "drill \(record.id) by \(owner): forward again")
            for (host, error) in plan.refused { update(&record, host) { $0.error = $0.error ?? error } }
            for group in plan.groups {
                switch await leg(group, lock: lock) {
                case .success(let summary):
                    record.rollouts.append(summary.rolloutID)
                    for result in summary.hosts {
                        update(&record, result.host) { host in
                            host.forward = result.phase
                            if result.phase != .succeeded { host.error = host.error ?? result.error }
                        }
                    }
                case .failure(let error):
                    for host in group.hosts { update(&record, host.id) { $0.error = $0.error ?? error.errorInfo } }
                }
            }
        }
    }

    /// One leg: the returns of a group, at once, as a rollout of kind `drill` under the
    /// drill's lock. Each host's return is its own (no halting, no reverting a return).
    func leg(_ group: RollbackPlan.Group, lock: HeldRolloutLock) async -> Result<RolloutSummary, ControllerError> {
        var strategy = RolloutStrategy()
        strategy.failureThreshold = .percent(100)
        strategy.autoRevert = false
        var request = RolloutRequest(
            rolloutID: RolloutRequest.newID(app: app), envelope: group.envelope, manifest: group.manifest, hosts: group.hosts,
            strategy: strategy, artifactFile: nil, revertKey: nil)
        request.kind = .drill
        var session = RolloutSession(
            history: history, state: state, makeClient: makeClient, progress: legProgress(group.hosts.map(\.id)), notify: say)
        session.heldLock = lock
        session.catchesInterrupts = false
        session.owner = owner
        session.pid = pid
        do {
            return .success(try await session.run(request, signers: ["controller:\(key.keyid.prefix(12))"]))
        } catch {
            return .failure(error)
        }
    }

    // MARK: Asking the hosts

    func ask(_ hosts: [Fleet.Host]) async throws(ControllerError) -> (statuses: [String: AppStatus], unreachable: [(host: String, error: ErrorInfo)]) {
        let app = self.app
        return try await withAgentClient(for: hosts, retry: .quick, using: makeClient) { client in
            await RollbackPreparation.statuses(client: client, hosts: hosts, app: app)
        }
    }

    /// The hosts' statuses once every one answers and runs no deployment of the app (an
    /// agent restarted mid-drill settles its interrupted deployment first), or whatever is
    /// known when `recoveryWait` runs out. Keeps the lock's lease alive meanwhile.
    func settle(lock: HeldRolloutLock) async -> (statuses: [String: AppStatus], unreachable: [(host: String, error: ErrorInfo)]) {
        let deadline = Date().addingTimeInterval(recoveryWait)
        var announced = false
        while true {
            let answer: (statuses: [String: AppStatus], unreachable: [(host: String, error: ErrorInfo)])
            do { answer = try await ask(hosts) } catch {
                answer = ([:], hosts.map { (host: $0.id, error: error.errorInfo) })
            }
            let busy = answer.statuses.filter { $0.value.activeDeploymentID != nil }.map(\.key)
            if (answer.unreachable.isEmpty && busy.isEmpty) || Date() >= deadline { return answer }
            if !announced {
                let waiting = (answer.unreachable.map(\.host) + busy).sorted()
                say("waiting up to \(Int(recoveryWait))s for \(waiting.joined(separator: ", ")) to answer and settle")
                announced = true
            }
            _ = lock.renew()
            try? await Task.sleep(for: .seconds(1))
        }
    }

    // MARK: The outcome

    /// Where every host ended, and so how the drill ended.
    func finish(_ record: inout DrillRecord, final: (statuses: [String: AppStatus], unreachable: [(host: String, error: ErrorInfo)]), signal: Int32?) {
        for index in record.hosts.indices {
            let host = record.hosts[index]
            record.hosts[index].final = final.statuses[host.host]?.current
            record.hosts[index].needsAttention = final.statuses[host.host]?.current != host.original
            if let error = final.unreachable.first(where: { $0.host == host.host })?.error {
                record.hosts[index].error = record.hosts[index].error ?? error
            }
        }
        record.finishedAt = Date()
        let recovered = record.hosts.compactMap(\.timeToRecover)
        record.timeToRecover = recovered.max()
        let attention = record.attention
        if !attention.isEmpty {
            record.outcome = .needsAttention
            record.reason = attention.map { host in
                let original = host.original ?? "?"
                let fix = "`baton rollback \(app) --environment \(environment) --to \(original) --hosts \(host.host)`"
                guard let final = host.final else {
                    return "\(host.host) did not answer after the drill (it was on \(original)); check it with `baton status \(app) --environment \(environment)`, and if it is not on \(original) run \(fix)"
                }
                return "\(host.host) is on \(final), not on \(original) as before the drill; put it back with \(fix)"
            }.joined(separator: "; ")
        } else if let signal {
            record.outcome = .interrupted
            record.reason = "stopped by \(signal == SIGTERM ? "SIGTERM" : "SIGINT"); every host is back on the release it was on"
        } else if record.hosts.contains(where: Self.legFailed) {
            record.outcome = .failed
            record.reason = record.hosts.filter(Self.legFailed).map { host in
                let leg = host.back != .succeeded ? "the way back to \(host.previous ?? "?")" : "the way forward to \(host.original ?? "?")"
                let error = host.error.map { ": \($0.code): \($0.message)" } ?? ""
                return "\(host.host): \(leg) ended \(host.back == .succeeded ? host.forward?.rawValue ?? "?" : host.back?.rawValue ?? "not started")\(error)"
            }.joined(separator: "; ") + "; every host is back on the release it was on"
        } else {
            record.outcome = .succeeded
        }
    }

    /// The way back did not end healthy, or the way forward was needed and did not.
    static func legFailed(_ host: DrillRecord.Host) -> Bool {
        host.back != .succeeded || (host.forward.map { $0 != .succeeded } ?? false)
    }

    private func update(_ record: inout DrillRecord, _ host: String, _ change: (inout DrillRecord.Host) -> Void) {
        guard let index = record.hosts.firstIndex(where: { $0.host == host }) else { return }
        change(&record.hosts[index])
    }
}
