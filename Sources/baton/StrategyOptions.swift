import ArgumentParser
import BatonCLISupport
import BatonController
import BatonProtocol
import Foundation

/// How the rollout walks the fleet. Values are typed (counts, `n|p%`, durations); the
/// rules between them are the library's (`RolloutStrategy.validate`), checked in `validate()`.
struct StrategyOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Deploy this many hosts first, alone; any failure among them halts.", valueName: "n")) var canary: Int = 0
    @Flag(name: .customLong("pause-after-canary"), help: "Stop after a healthy canary until `baton rollout resume` or `abort`.")
    var pauseAfterCanary = false
    @Option(help: ArgumentHelp("Hosts per batch after the canary (default: all the rest).", valueName: "n|p%")) var batch: HostCount?
    @Option(help: ArgumentHelp("Hosts deploying at once within a batch (default: the whole batch).", valueName: "n")) var parallel: Int?
    @Option(name: .customLong("max-unavailable"), help: ArgumentHelp("Hosts that may be deploying or failed at once.", valueName: "n|p%"))
    var maxUnavailable: HostCount?
    @Option(name: .customLong("failure-threshold"), help: ArgumentHelp("Failed hosts tolerated before halting; unreachable hosts count.", valueName: "n|p%"))
    var failureThreshold: HostCount = .hosts(0)
    @Option(help: ArgumentHelp("Wait between batches, e.g. 30s or 2m.", valueName: "duration")) var pause: BatonDuration?
    @Flag(name: .customLong("no-auto-revert"), help: "On a halt, leave switched hosts on the new release.") var noAutoRevert = false
    @Option(name: .customLong("upload-parallel"), help: ArgumentHelp("Artifact uploads at once (default: no bound); hosts still deploy --parallel wide.", valueName: "n"))
    var uploadParallel: Int?

    func validate() throws {
        _ = try strategy()
    }

    func strategy() throws(CLIError) -> RolloutStrategy {
        var strategy = RolloutStrategy()
        strategy.canary = canary
        strategy.pauseAfterCanary = pauseAfterCanary
        strategy.batch = batch
        strategy.parallel = parallel
        strategy.maxUnavailable = maxUnavailable
        strategy.failureThreshold = failureThreshold
        strategy.pause = pause
        strategy.autoRevert = !noAutoRevert
        strategy.uploadParallel = uploadParallel
        do { try strategy.validate() } catch { throw error.cli }
        return strategy
    }
}
