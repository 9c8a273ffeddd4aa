import BatonProtocol
import Foundation

extension RolloutStateMachine {
    /// The canary wave ended healthy (its hosts have baked): compare it with the hosts
    /// of the later waves, still on the old release.
    mutating func startAnalysis(_ index: Int, now: Date) {
        let canary = Dictionary(uniqueKeysWithValues: waves[index].hosts.map { ($0, Optional(manifest.release)) })
        let later = waves[(index + 1)...].flatMap { $0.hosts }.filter { results[$0]!.phase == .pending }
        let baseline = Dictionary(uniqueKeysWithValues: later.map { ($0, results[$0]!.previousRelease) })
        emit(.analysis, wave: waves[index].name,
             message: "canary analysis: comparing \(canary.count) canary host(s) with \(baseline.count) on the old release", now: now)
        stage = .analysing(index)
        actions.append(.analyse(AnalysisRequest(canary: canary, baseline: baseline)))
    }

    /// Pass: on as after any healthy canary. Fail: halt, which reverts the canary.
    /// Inconclusive: pause for a person, as `--pause-after-canary` does.
    mutating func analysed(_ report: CanaryAnalysisReport, now: Date) {
        guard case .analysing(let index) = stage else { return }
        emit(.analysis, wave: waves[index].name, message: "canary analysis \(report.summary)", now: now)
        switch report.verdict {
        case .fail:
            halt("the canary analysis failed: \(report.reasons.first ?? "")", now: now)
        case .inconclusive where !halted:
            paused = true
            skipPending()
            emit(.paused, message: "paused: the canary analysis was inconclusive (\(report.reasons.first ?? "")): `baton rollout resume \(rolloutID)` continues, `baton rollout abort \(rolloutID)` reverts the canary", now: now)
            return finishRollout(now: now)
        default:
            break
        }
        // Halted by the verdict, or meanwhile (an interrupt, a lost lock): the canary goes back.
        if halted { return enterHalting(now: now) }
        afterWave(index, now: now)
    }
}
