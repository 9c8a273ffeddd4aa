#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import BatonProtocol
import Logging

/// Runs hooks: each in its own process group, with a timeout after which the whole group
/// is terminated and then killed, and the tails of its output kept for the deployment
/// record. Never throws and never waits forever: every outcome is a `HookRun`.
public struct HookRunner: Sendable {
    public let logger: Logger
    /// Time between SIGTERM and SIGKILL on a timeout (an invocation may override it).
    public let killGrace: Duration
    /// Where the output files are created (and at once unlinked).
    public let outputDirectory: String

    /// - Parameters:
    ///   - killGrace: time the process group gets to exit after SIGTERM on a timeout.
    ///   - outputDirectory: where output is captured; default `$TMPDIR` or `/tmp`.
    public init(logger: Logger, killGrace: Duration = .seconds(2), outputDirectory: String? = nil) {
        self.logger = logger
        self.killGrace = killGrace
        self.outputDirectory =
            outputDirectory ?? getenv("TMPDIR").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
    }

    /// Runs the hook to its end: until its main process exits (anything it started in the
    /// background is left alone), its timeout runs out, or the task is cancelled (then
    /// its process group is terminated and killed).
    public func run(_ invocation: HookInvocation) async -> HookRun {
        let startedAt = Date()
        let stopwatch = Stopwatch()
        let arguments = invocation.command.arguments
        var metadata: Logger.Metadata = [
            "baton.hook": "\(invocation.hook)", "baton.release": "\(invocation.release)",
        ]
        // Health commands run every interval for minutes: their runs are in the record.
        let level: Logger.Level = invocation.hook == HookInvocation.healthHook ? .debug : .info
        logger.log(
            level: level, "hook started",
            metadata: metadata.merging(
                ["baton.hook.command": "\(arguments.joined(separator: " "))", "baton.hook.timeout": "\(invocation.timeout)"]
            ) { $1 })

        let stdout = CaptureFile(in: outputDirectory)
        let stderr = CaptureFile(in: outputDirectory)
        var run = HookRun(
            hook: invocation.hook, release: invocation.release, command: arguments, startedAt: startedAt,
            durationMilliseconds: 0, exitStatus: nil, signal: nil, timedOut: false, stdoutTail: "", stderrTail: "")
        var notes = [stdout.problem, stderr.problem].compactMap { $0 }

        let request = SpawnedProcess.Request(
            arguments: arguments, environment: invocation.effectiveEnvironment,
            workingDirectory: invocation.workingDirectory, stdout: stdout.descriptor, stderr: stderr.descriptor)
        switch SpawnedProcess.spawn(request) {
        case .failure(let failure):
            // What a shell says for a command it cannot run.
            run.exitStatus = 127
            notes.append("\(failure)")
        case .success(let process):
            let deadline = stopwatch.start + invocation.timeout.swiftDuration
            let (termination, ending) = await supervise(
                process, until: deadline, grace: invocation.killGrace ?? killGrace)
            switch termination {
            case .exited(let status):
                run.exitStatus = status
                // It exited, but only because we told it to.
                if ending != .exited { run.signal = SIGTERM }
            case .signalled(let signal):
                run.signal = signal
            case .unknown:
                notes.append("exit status unknown: the process was reaped elsewhere")
                if ending != .exited { run.signal = SIGKILL }
            }
            run.timedOut = ending == .timedOut
            if ending == .cancelled { notes.append("cancelled: process group terminated") }
        }

        run.durationMilliseconds = stopwatch.elapsedMilliseconds
        run.stdoutTail = stdout.tail(limit: invocation.outputLimit)
        run.stderrTail = Self.appending(notes, to: stderr.tail(limit: invocation.outputLimit))

        metadata["baton.hook.duration_ms"] = "\(run.durationMilliseconds)"
        if let status = run.exitStatus { metadata["baton.hook.exit_status"] = "\(status)" }
        if let signal = run.signal { metadata["baton.hook.signal"] = "\(signal)" }
        if run.timedOut {
            logger.log(level: level, "hook timed out; its process group was killed", metadata: metadata)
        } else {
            logger.log(level: level, run.succeeded ? "hook finished" : "hook failed", metadata: metadata)
        }
        return run
    }

    private enum Ending { case exited, timedOut, cancelled }

    /// Waits for the main process without blocking a thread: `waitid(WNOHANG)` polled
    /// with pauses growing from 2 ms to 25 ms, which costs nothing next to a hook's run
    /// time and notices a quick exit quickly.
    private func supervise(
        _ process: SpawnedProcess, until deadline: ContinuousClock.Instant, grace: Duration
    ) async -> (SpawnedProcess.Termination, Ending) {
        let clock = ContinuousClock()
        var pause = Duration.milliseconds(2)
        while !process.hasExited() {
            if Task.isCancelled { return (await terminate(process, grace: grace), .cancelled) }
            let now = clock.now
            if now >= deadline { return (await terminate(process, grace: grace), .timedOut) }
            await Stopwatch.pause(min(pause, deadline - now))
            pause = min(pause * 2, .milliseconds(25))
        }
        return (process.reap(), .exited)
    }

    /// SIGTERM to the group, up to `grace` for the main process to exit, then SIGKILL to
    /// whatever is left of the group (children that ignored SIGTERM or outlived the main
    /// process), then reap. The main process stays unreaped until after the SIGKILL so
    /// that the group id cannot have been reused.
    private func terminate(_ process: SpawnedProcess, grace: Duration) async -> SpawnedProcess.Termination {
        let clock = ContinuousClock()
        process.signalGroup(SIGTERM)
        let graceEnd = clock.now + grace
        while !process.hasExited(), clock.now < graceEnd {
            await Stopwatch.pause(min(.milliseconds(10), graceEnd - clock.now))
        }
        process.signalGroup(SIGKILL)
        // SIGKILL cannot be ignored, but a process stuck in the kernel (an unresponsive
        // NFS mount) dies only when the kernel lets it: stop waiting after a while and
        // leave the reaping to a background task rather than block the deployment.
        let killEnd = clock.now + .seconds(5)
        while !process.hasExited() {
            guard clock.now < killEnd else {
                logger.warning("hook process survives SIGKILL; reaping it in the background", metadata: ["baton.hook.pid": "\(process.pid)"])
                Task.detached {
                    while !process.hasExited() { try? await Task.sleep(for: .seconds(1)) }
                    _ = process.reap()
                }
                return .signalled(SIGKILL)
            }
            await Stopwatch.pause(.milliseconds(5))
        }
        return process.reap()
    }

    /// The agent's own notes about a run, after the hook's stderr, marked as ours.
    private static func appending(_ notes: [String], to tail: String) -> String {
        guard !notes.isEmpty else { return tail }
        let ours = notes.map { "batond: \($0)" }.joined(separator: "\n")
        if tail.isEmpty { return ours }
        return tail + (tail.hasSuffix("\n") ? "" : "\n") + ours
    }
}
