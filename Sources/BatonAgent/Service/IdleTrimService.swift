import Logging
import ServiceLifecycle

/// Gives back the binary's pages again (`ResidentCode.release()`) each time the agent has
/// been idle for a while: no API call begun, ended or in progress and no deployment
/// accepted or running over one whole `after` period. Once per idle spell: a call or a
/// deployment must happen before it trims again.
///
/// Why again and not only after start-up: serving brings code back, and far more of it
/// than runs. The kernel reads the executable text ahead in large blocks whatever
/// `MADV_RANDOM` says, and maps up to 16 neighbouring pages on each fault, so after a
/// handful of calls an agent that touched a few MB of code holds 12 MB of its binary
/// (docs/footprint.md). An agent is idle almost all of the time, between deployments;
/// holding those pages through hours of idleness costs the host memory for nothing.
/// What it costs the agent: the first call after an idle spell reads its code from disk
/// again (a few MB, once).
struct IdleTrimService: Service {
    let activity: APIActivity
    /// Whether a deployment is accepted or running (`DeploymentEngine.hasWork`).
    let isBusy: @Sendable () async -> Bool
    let after: Duration
    let logger: Logger
    /// What is done once per idle spell.
    var trim: @Sendable () -> ResidentCode.Outcome = { ResidentCode.release() }

    func run() async {
        var seen = activity.generation
        var trimmedAt: UInt64?
        while !Task.isShuttingDownGracefully {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: after) }
            } catch {
                return
            }
            let now = activity.generation
            defer { seen = now }
            guard now == seen, trimmedAt != now, activity.callsInProgress == 0, await !isBusy() else { continue }
            trimmedAt = now
            let outcome = trim()
            logger.debug(
                "idle: binary pages released",
                metadata: [
                    "baton.rss_kib.before": "\(outcome.residentBefore)", "baton.rss_kib.after": "\(outcome.residentAfter)",
                ])
        }
    }
}
