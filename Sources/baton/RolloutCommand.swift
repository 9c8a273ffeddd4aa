import ArgumentParser
import BatonCLISupport
import BatonController
import BatonProtocol
import Foundation

/// `baton rollout ENVELOPE ...` (the default subcommand, `start`), `resume`, `abort`.
struct RolloutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollout",
        abstract: "Roll a signed release out to the fleet: canary, batches, failure threshold, revert on halt.",
        usage: """
            baton rollout ENVELOPE [--artifact file] [--environment env] [--hosts ids] [--selector key=value,...]
                                   [--canary n] [--pause-after-canary] [--batch n|n%] [--pause duration] [--parallel n]
                                   [--failure-threshold n|n%] [--max-unavailable n|n%] [--no-auto-revert] [--upload-parallel n]
                                   [--lock-wait duration] [--dry-run] [--json | --plain | --brief]
            baton rollout resume ROLLOUT_ID
            baton rollout abort ROLLOUT_ID
            """,
        discussion: """
            `baton rollout ENVELOPE [options]` starts one (every option is described by `baton rollout start --help`); \
            `resume` and `abort` pick up a paused or stopped one.

            Exit status: 0 all hosts succeeded; 1 the rollout failed and every host is on a known healthy release; \
            2 usage or configuration errors; 3 hosts need attention; 4 the rollout lock is held by another live \
            rollout (or this one lost it); 5 paused after the canary.
            """,
        subcommands: [RolloutStartCommand.self, Resume.self, Abort.self],
        defaultSubcommand: RolloutStartCommand.self)
}

struct RolloutStartCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "start",
        abstract: "Roll a signed release out to the fleet: canary, batches, failure threshold, revert on halt.",
        discussion: """
            Checks everything it can before contacting any agent (envelope and trust policy, \
            environment, hosts, artifact digest), then asks every host for its state, uploads the \
            artifact where missing and deploys wave by wave. When the failure threshold is exceeded \
            (or the canary fails) the rollout halts and every host it switched is reverted at once \
            with a manifest signed by the controller's key.

            Exit status: 0 all hosts succeeded; 1 the rollout failed and every host is on a known \
            healthy release (reverted, rolled back or untouched); 3 hosts need attention (revert or \
            rollback failed, unreachable); 4 the app's rollout lock is held by another live rollout, or this \
            one lost its lock and stopped (abandoned); 5 paused after the canary; 2 usage or configuration errors.
            """)

    @Argument(help: "The signed envelope (from `baton manifest sign`).") var envelope: String
    @Option(help: ArgumentHelp("The artifact file, checked against the manifest's digest (default: the controller's store).", valueName: "file"))
    var artifact: String?
    @Option(help: ArgumentHelp("The environment expected (default: the manifest's).", valueName: "env")) var environment: String?
    @OptionGroup var selection: SelectionOptions
    @OptionGroup var strategy: StrategyOptions
    @OptionGroup var output: OutputOptions
    @Flag(name: .customLong("dry-run"), help: "Only plan: what would happen per host (`baton plan`); nothing changes.") var dryRun = false
    @Option(name: .customLong("lock-wait"), help: ArgumentHelp("Wait this long for the app's rollout lock (default: do not wait; exit 4).", valueName: "duration"))
    var lockWait: String?
    @OptionGroup var controller: ControllerOptions

    func lockWaitSeconds() throws(CLIError) -> TimeInterval {
        guard let lockWait else { return 0 }
        guard let duration = BatonDuration(parsing: lockWait) else {
            throw CLIError(code: "invalid_value", message: "--lock-wait '\(lockWait)' is not a duration like 30s or 5m")
        }
        return duration.seconds
    }

    func run() async throws {
        if dryRun {
            throw ExitCode(try await PlanCommand.plan(
                envelope: envelope, artifact: artifact, environment: environment, selection: selection,
                strategy: try strategy.strategy(), json: output.json, controller: controller))
        }
        let context = try ControllerContext(controller)
        let bytes = try OperatorFiles.read(envelope, what: "envelope")
        let strategy = try strategy.strategy()
        let checked: RolloutPreflight.Checked
        do {
            checked = try RolloutPreflight.check(
                .init(envelope: Array(bytes), envelopeFile: envelope, fleet: try context.fleet(),
                      environment: environment, hostIDs: selection.hostIDs, selector: try selection.labels(),
                      artifactFile: artifact, policy: try context.policy()),
                state: context.state)
        } catch {
            throw cliError(error)
        }
        let request = RolloutRequest(
            rolloutID: RolloutRequest.newID(app: checked.manifest.app), envelope: Array(bytes), manifest: checked.manifest,
            hosts: checked.hosts, strategy: strategy, artifactFile: checked.artifactFile, revertKey: try context.revertKey())
        let status = try await RolloutExecution.run(
            request, context: context, output: output, signers: checked.signers.map { $0.names.first ?? $0.keyid },
            lockWait: try lockWaitSeconds())
        throw ExitCode(status)
    }
}

/// Runs a checked rollout request: takes the app's lock for the environment (renewing its
/// lease while it runs), shows progress, records everything in the history store, and
/// returns the exit status. Ctrl-C halts (no new hosts, reverts what was switched); a
/// second Ctrl-C ends at once, recording the rollout as needing attention.
enum RolloutExecution {
    static let lease: TimeInterval = 60

    enum Mode {
        case run
        case abort(String)
    }

    static func run(_ request: RolloutRequest, context: ControllerContext, output: OutputOptions, signers: [String],
                    lockWait: TimeInterval = 0, mode: Mode = .run) async throws(CLIError) -> Int32 {
        do { try context.state.prepare() } catch { throw error.cli }
        let history = try context.history()
        let manifest = request.manifest
        let lockRequest = LockRequest(
            app: manifest.app, environment: manifest.environment, rolloutID: request.rolloutID,
            owner: ControllerActor.current, pid: getpid(), lease: lease)
        let term = try await acquire(lockRequest, history: history, wait: lockWait)
        try? context.state.recordSerial(app: manifest.app, manifest.serial)
        let client = try context.client(for: request.hosts)
        let renderer = output.renderer(hosts: request.hosts.map(\.id))
        let record = RolloutRecord(
            id: request.rolloutID, app: manifest.app, release: manifest.release, serial: manifest.serial,
            environment: manifest.environment, strategy: request.strategy.summary, actor: ControllerActor.current,
            signers: signers, owner: manifest.owner, notes: manifest.notes, source: manifest.source, startedAt: Date(),
            hosts: request.hosts.map { HostResult(host: $0.id) })
        do {
            try history.rolloutStarted(record)
            try history.saveResumeInfo(RolloutResumeInfo(
                rolloutID: request.rolloutID, envelope: request.envelope, hostIDs: request.hosts.map(\.id), strategy: request.strategy,
                artifactFile: request.artifactFile))
        } catch { throw error.cli }
        // Renewing is the check: it succeeds only while the row still carries our term.
        let runner = RolloutRunner(client: client, request: request, holdsLock: {
            (try? history.renewLock(
                app: manifest.app, environment: manifest.environment, rolloutID: request.rolloutID, term: term, lease: lease, now: Date())) ?? false
        }) { event in
            try? history.record(event)
            renderer.handle(event)
        }
        let renewal = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(lease / 3))
                if Task.isCancelled { break }
                let ours = (try? history.renewLock(
                    app: manifest.app, environment: manifest.environment, rolloutID: request.rolloutID, term: term, lease: lease, now: Date())) ?? false
                if !ours {
                    await runner.lostLock("the rollout lock was broken or taken over")
                    break
                }
            }
        }
        let interrupts = InterruptWatcher { count in
            if count == 1 {
                Output.error("interrupted: halting (no new hosts; switched hosts are reverted); Ctrl-C again to stop at once")
                Task { await runner.interrupt("interrupted by the operator (SIGINT)") }
            } else {
                var summary = RolloutSummary(
                    rolloutID: request.rolloutID, app: manifest.app, release: manifest.release, serial: manifest.serial,
                    environment: manifest.environment, strategy: request.strategy.summary, outcome: .needsAttention, halted: true,
                    haltReason: "stopped at once by a second SIGINT; hosts may be mid-deployment", startedAt: record.startedAt,
                    finishedAt: Date(), hosts: record.hosts)
                summary.exitStatus = 130
                try? history.rolloutFinished(summary)
                try? history.releaseLock(app: manifest.app, environment: manifest.environment, rolloutID: request.rolloutID, term: term, now: Date())
                Output.error("stopped; rollout \(request.rolloutID) is recorded as needing attention")
                exit(130)
            }
        }
        let summary: RolloutSummary
        switch mode {
        case .run: summary = await runner.run()
        case .abort(let reason): summary = await runner.abort(reason: reason)
        }
        interrupts.stop()
        renewal.cancel()
        await client.shutdown()
        if let revertSerial = summary.revertSerial {
            try? context.state.recordSerial(app: manifest.app, revertSerial)
        }
        // An abandoned rollout's record belongs to whoever took the lock over under the same
        // id (`resume`, `abort`): it is marked only if that one has not ended it already.
        if summary.outcome == .abandoned {
            _ = try? history.rolloutAbandoned(id: request.rolloutID, reason: summary.haltReason ?? "the rollout lock was lost", now: Date())
        } else {
            try? history.rolloutFinished(summary)
        }
        try? history.releaseLock(app: manifest.app, environment: manifest.environment, rolloutID: request.rolloutID, term: term, now: Date())
        renderer.finish(summary)
        return summary.exitStatus
    }

    /// Takes the lock, waiting up to `wait` seconds for a live one to be released; returns
    /// the term that renewing and releasing it must name.
    static func acquire(_ request: LockRequest, history: any HistoryStore, wait: TimeInterval) async throws(CLIError) -> Int {
        let deadline = Date().addingTimeInterval(wait)
        while true {
            let outcome: LockAcquisition
            do { outcome = try history.acquireLock(request, now: Date()) } catch { throw error.cli }
            switch outcome {
            case .acquired(let term):
                return term
            case .tookOver(let previous, let term):
                // The previous holder's controller died before recording its end; without
                // this its rollout would show as running forever.
                if previous.rolloutID != request.rolloutID {
                    _ = try? history.rolloutAbandoned(
                        id: previous.rolloutID, reason: "its lease ran out and rollout \(request.rolloutID) took the lock over", now: Date())
                }
                Output.error("warning: took over the lock of \(request.app) in \(request.environment) from rollout \(previous.rolloutID) (\(previous.owner), pid \(previous.pid)), whose lease ran out at \(RFC3339.format(previous.expiresAt)); the takeover is recorded")
                return term
            case .held(let holder):
                if holder.rolloutID == request.rolloutID, holder.owner == request.owner, !processIsAlive(holder.pid) {
                    // `resume` or `abort` of a rollout whose controller on this machine was
                    // killed: its lease would keep the rollout locked for nothing. The term
                    // check in the store makes this a no-op if the lock moved meanwhile.
                    let takeover: LockAcquisition
                    do {
                        takeover = try history.takeOverLock(
                            request, from: holder, reason: "its controller (pid \(holder.pid) on this machine) is gone", now: Date())
                    } catch { throw error.cli }
                    if case .tookOver(_, let term) = takeover {
                        Output.error("warning: took over the lock of rollout \(holder.rolloutID), whose controller (pid \(holder.pid)) is gone; the takeover is recorded")
                        return term
                    }
                    if case .acquired(let term) = takeover { return term }
                    continue
                }
                if holder.rolloutID == request.rolloutID {
                    throw CLIError(
                        code: "lock_held",
                        message: "rollout \(holder.rolloutID) is still run by its controller: \(holder.owner) (pid \(holder.pid), term \(holder.term)) holds the lock of \(request.app) in \(request.environment), lease until \(RFC3339.format(holder.expiresAt)) unless renewed; stop that controller (Ctrl-C halts it), or `baton lock break \(request.app) \(request.environment) --reason ...` if it is dead",
                        exitCode: 4)
                }
                if Date() >= deadline {
                    throw CLIError(
                        code: "lock_held",
                        message: "rollout \(holder.rolloutID) by \(holder.owner) (pid \(holder.pid)) holds the lock of \(request.app) in \(request.environment) until \(RFC3339.format(holder.expiresAt)) unless renewed; wait with --lock-wait, or `baton lock break \(request.app) \(request.environment) --reason ...` if it is dead",
                        exitCode: 4)
                }
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
    }
}

/// Whether `pid` is a process on this machine; a process of another user counts as alive.
func processIsAlive(_ pid: Int32) -> Bool {
    kill(pid, 0) == 0 || errno == EPERM
}

/// Counts SIGINTs (Ctrl-C) and calls back on each, instead of the default of dying with
/// the lock held and the record unfinished.
final class InterruptWatcher: @unchecked Sendable {
    private let source: any DispatchSourceSignal
    private var count = 0

    init(_ onInterrupt: @escaping @Sendable (Int) -> Void) {
        signal(SIGINT, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler { [unowned self] in
            count += 1
            onInterrupt(count)
        }
        source.resume()
    }

    func stop() {
        source.cancel()
        signal(SIGINT, SIG_DFL)
    }
}

extension RolloutCommand {
    /// Loads a recorded rollout for `resume` or `abort`.
    static func recorded(_ rolloutID: String, context: ControllerContext, allowed: Set<RolloutOutcome?>) throws(CLIError)
        -> (RolloutRecord, RolloutRequest)
    {
        let history = try context.history()
        let record: RolloutRecord?
        let info: RolloutResumeInfo?
        do {
            record = try history.rollout(id: rolloutID)
            info = try history.resumeInfo(rolloutID: rolloutID)
        } catch { throw error.cli }
        guard let record, let info else {
            throw CLIError(code: "rollout_unknown", message: "no rollout '\(rolloutID)' in the history; `baton history` lists them")
        }
        guard allowed.contains(record.outcome) else {
            throw CLIError(
                code: "rollout_finished",
                message: "rollout \(rolloutID) already ended (\(record.outcome?.rawValue ?? "?")); start a new rollout or `baton rollback` instead")
        }
        let manifest: Manifest
        do { manifest = try Manifest.parse(payload: try Envelope.parse(info.envelope).payload) } catch {
            throw CLIError(code: "state_error", message: "the stored envelope of \(rolloutID) cannot be read: \(error.message)")
        }
        let fleet = try context.fleet()
        var hosts: [Fleet.Host] = []
        for id in info.hostIDs {
            guard let host = fleet.hosts.first(where: { $0.id == id }) else {
                throw CLIError(code: "no_hosts", message: "host '\(id)' of rollout \(rolloutID) is no longer in the fleet file")
            }
            hosts.append(host)
        }
        var strategy = info.strategy
        strategy.pauseAfterCanary = false
        let artifact = info.artifactFile.flatMap { FileManager.default.fileExists(atPath: $0) ? $0 : nil }
            ?? (context.state.hasArtifact(manifest.artifact.sha256) ? context.state.artifactPath(manifest.artifact.sha256) : nil)
        var request = RolloutRequest(
            rolloutID: rolloutID, envelope: info.envelope, manifest: manifest, hosts: hosts, strategy: strategy, artifactFile: artifact,
            revertKey: try context.revertKey())
        for host in record.hosts { if let previous = host.previousRelease { request.knownPrevious[host.host] = previous } }
        return (record, request)
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Continue a rollout that paused after its canary or whose controller stopped.",
            discussion: "Asks every host again; hosts that already have the release answer with their existing deployment, so nothing is deployed twice.")
        @Argument(help: "The rollout id (`baton history`).") var rolloutID: String
        @OptionGroup var output: OutputOptions
        @OptionGroup var controller: ControllerOptions

        func run() async throws {
            let context = try ControllerContext(controller)
            let (record, request) = try RolloutCommand.recorded(rolloutID, context: context, allowed: [nil, .paused, .abandoned])
            throw ExitCode(try await RolloutExecution.run(request, context: context, output: output, signers: record.signers))
        }
    }

    struct Abort: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "End a paused or stopped rollout: every host it moved goes back to its previous release, at once.")
        @Argument(help: "The rollout id (`baton history`).") var rolloutID: String
        @OptionGroup var output: OutputOptions
        @OptionGroup var controller: ControllerOptions

        func run() async throws {
            let context = try ControllerContext(controller)
            let (record, request) = try RolloutCommand.recorded(rolloutID, context: context, allowed: [nil, .paused, .needsAttention, .abandoned])
            throw ExitCode(try await RolloutExecution.run(
                request, context: context, output: output, signers: record.signers,
                mode: .abort("aborted by \(ControllerActor.current)")))
        }
    }
}
