#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import BatonProtocol
import Logging
import NIOCore
import NIOPosix

/// Decides whether a release is healthy after activation, and keeps watching it through
/// the bake. Every attempt of every check is reported, so the deployment record shows
/// what was seen; nothing waits past the policy's timeout, deadline or bake duration.
public struct HealthChecker: Sendable {
    let probe: NetworkProbe
    let hookRunner: HookRunner
    let logger: Logger
    /// What the intervals between attempts, the deadline and the bake are measured on.
    /// A single check's own timeout is its probe's (real time: it bounds a real socket
    /// or process).
    let clock: HealthClock

    /// - Parameters:
    ///   - eventLoopGroup: where the HTTP and TCP probes run.
    ///   - hookRunner: runs `command` checks (as hook `health`).
    public init(
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, hookRunner: HookRunner,
        logger: Logger
    ) {
        self.init(eventLoopGroup: eventLoopGroup, hookRunner: hookRunner, logger: logger, clock: ContinuousClock())
    }

    /// - Parameter clock: what intervals, deadlines and bakes are measured and slept on
    ///   (the monotonic clock in the agent; tests pass one that does not make them wait
    ///   out every interval).
    public init<C: Clock<Duration>>(
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, hookRunner: HookRunner,
        logger: Logger, clock: C
    ) {
        probe = NetworkProbe(group: eventLoopGroup)
        self.hookRunner = hookRunner
        self.logger = logger
        self.clock = HealthClock(clock)
    }

    /// One attempt of every check in the policy, run concurrently, each bounded by the
    /// policy's timeout; the attempt passes when all pass. Returns one `HealthAttempt`
    /// per check, in the policy's order.
    public func attempt(
        _ policy: HealthPolicy, stage: String, release: String, workingDirectory: String,
        environment: [String: String]
    ) async -> [HealthAttempt] {
        await attempt(
            policy, stage: stage, release: release, workingDirectory: workingDirectory, environment: environment,
            tally: nil)
    }

    /// One attempt, its metric measurements counted in `tally` (one per stage).
    func attempt(
        _ policy: HealthPolicy, stage: String, release: String, workingDirectory: String,
        environment: [String: String], tally: MetricTally?
    ) async -> [HealthAttempt] {
        await round(
            policy, stage: stage, release: release, workingDirectory: workingDirectory, environment: environment,
            tally: tally, at: nil
        ).attempts
    }

    /// One attempt scheduled for `at` (on the health clock): every check, except a
    /// `prometheus` check with its own `interval` that `tally` last measured less than
    /// that interval before `at`. Returns the attempts of the checks that ran, in the
    /// policy's order, and whether the attempt passed: every check that ran passed, and
    /// every one left out passed its last measurement.
    func round(
        _ policy: HealthPolicy, stage: String, release: String, workingDirectory: String,
        environment: [String: String], tally: MetricTally?, at: Duration?
    ) async -> (attempts: [HealthAttempt], passed: Bool) {
        let context = CheckContext(
            stage: stage, release: release, workingDirectory: workingDirectory, environment: environment,
            timeout: policy.effectiveTimeout, host: environment["BATON_HOST"] ?? "", tally: tally)
        var resting: [Int] = []
        var due: [(Int, HealthCheck)] = []
        for (index, check) in policy.checks.enumerated() {
            if case .prometheus(let metric) = check, let interval = metric.interval, let tally, let at,
                !tally.isDue(index: index, at: at, interval: interval)
            {
                resting.append(index)
            } else {
                due.append((index, check))
            }
        }
        let attempts = await withTaskGroup(of: (Int, HealthAttempt).self) { group in
            for (index, check) in due {
                group.addTask { (index, await self.run(check, index: index, context)) }
            }
            var attempts = [HealthAttempt?](repeating: nil, count: policy.checks.count)
            for await (index, attempt) in group { attempts[index] = attempt }
            return attempts.compactMap { $0 }
        }
        let passed = attempts.allSatisfy(\.passed) && resting.allSatisfy { tally?.lastPassed(index: $0) ?? false }
        return (attempts, passed)
    }

    /// Attempts every `interval` (a metric check with its own `interval` only when that
    /// is due) until one attempt passes (true) or the `deadline`
    /// passes (false); the last attempt is made at the deadline. Reports every attempt
    /// through `onAttempt`. Returns false when the task is cancelled.
    public func waitUntilHealthy(
        _ policy: HealthPolicy, stage: String, release: String, workingDirectory: String,
        environment: [String: String], onAttempt: @Sendable ([HealthAttempt]) async -> Void
    ) async -> Bool {
        let deadline = clock.now() + policy.effectiveDeadline.swiftDuration
        let interval = policy.effectiveInterval.swiftDuration
        let metadata: Logger.Metadata = ["baton.release": "\(release)", "baton.health.stage": "\(stage)"]
        let tally = MetricTally()
        var count = 0
        // When each attempt is due: a check's own interval is counted on these, so that
        // a late wake-up does not skip a measurement.
        var scheduled = clock.now()
        while true {
            let started = clock.now()
            let (attempts, passed) = await round(
                policy, stage: stage, release: release, workingDirectory: workingDirectory, environment: environment,
                tally: tally, at: scheduled)
            count += 1
            if !attempts.isEmpty { await onAttempt(attempts) }
            if passed {
                logger.info("healthy", metadata: metadata.merging(["baton.health.attempts": "\(count)"]) { $1 })
                return true
            }
            logger.debug("health attempt failed", metadata: metadata.merging(["baton.health.detail": "\(Self.failures(attempts))"]) { $1 })
            // A metric check past its limits: no later attempt can make up for it.
            if attempts.contains(where: \.endsStage) {
                logger.warning("metric check failed", metadata: metadata.merging(["baton.health.detail": "\(Self.failures(attempts))"]) { $1 })
                return false
            }
            if Task.isCancelled || clock.now() >= deadline { break }
            scheduled = min(started + interval, deadline)
            do {
                try await clock.sleep(until: scheduled)
            } catch {
                break
            }
        }
        logger.warning(
            "not healthy by the deadline",
            metadata: metadata.merging(
                ["baton.health.attempts": "\(count)", "baton.health.deadline": "\(policy.effectiveDeadline)"]) { $1 })
        return false
    }

    /// Bake: keeps attempting every `interval` for `duration`, the last attempt at its
    /// end (a metric check with its own `interval` only when that is due). Returns false at the first failed attempt (or when the task is cancelled),
    /// true when the duration ran out with every attempt passing. The first attempt is one
    /// interval in: baking follows an attempt that just passed.
    public func watch(
        _ policy: HealthPolicy, for duration: BatonDuration, stage: String, release: String,
        workingDirectory: String, environment: [String: String],
        onAttempt: @Sendable ([HealthAttempt]) async -> Void
    ) async -> Bool {
        guard duration > .zero, !policy.checks.isEmpty else { return true }
        let end = clock.now() + duration.swiftDuration
        let interval = policy.effectiveInterval.swiftDuration
        let metadata: Logger.Metadata = ["baton.release": "\(release)", "baton.health.stage": "\(stage)"]
        var next = clock.now() + interval
        let tally = MetricTally()
        while true {
            let at = min(next, end)
            do {
                try await clock.sleep(until: at)
            } catch {
                return false
            }
            let (attempts, _) = await round(
                policy, stage: stage, release: release, workingDirectory: workingDirectory, environment: environment,
                tally: tally, at: at)
            if !attempts.isEmpty { await onAttempt(attempts) }
            // A metric measurement within its check's limits lets the bake go on.
            guard attempts.allSatisfy({ $0.passed || $0.isTolerated }) else {
                logger.warning(
                    "health check failed while baking",
                    metadata: metadata.merging(["baton.health.detail": "\(Self.failures(attempts))"]) { $1 })
                return false
            }
            if Task.isCancelled { return false }
            if at >= end {
                logger.info("baked", metadata: metadata.merging(["baton.health.bake": "\(duration)"]) { $1 })
                return true
            }
            next = at + interval
        }
    }

    private static func failures(_ attempts: [HealthAttempt]) -> String {
        attempts.filter { !$0.passed }.map { "\($0.check): \($0.detail)" }.joined(separator: "; ")
    }
}

/// A clock as the health checker uses it: time as the distance from the moment the
/// checker was made, so that any `Clock` measured in `Duration` fits one stored type.
struct HealthClock: Sendable {
    /// Time since the checker was made.
    let now: @Sendable () -> Duration
    /// Sleeps until `now()` reaches the given time; throws when the task is cancelled.
    let sleeper: @Sendable (_ until: Duration) async throws -> Void

    init<C: Clock<Duration>>(_ clock: C) {
        let origin = clock.now
        now = { origin.duration(to: clock.now) }
        sleeper = { until in try await clock.sleep(until: origin.advanced(by: until), tolerance: nil) }
    }

    func sleep(until time: Duration) async throws { try await sleeper(time) }
}
