import BatonProtocol
import Foundation
import NIOCore

/// How the simulated agents behave: how long each deployment phase takes, and how often
/// things go wrong. Every random choice is drawn from ``SimulationSettings/draw(_:)``, a
/// hash of the seed and what is being decided, so a run can be repeated exactly and every
/// process of a simulation agrees without talking to the others.
struct SimulationSettings: Sendable {
    /// Each phase of a deployment lasts between these (uniformly).
    var latency: ClosedRange<Int64>
    /// Fraction of deployments whose health check fails: they switch, fail, and roll back
    /// (`rolled_back`, `health_check_failed`). Returns to a held release never fail, so a
    /// halted rollout's reverts land.
    var failRate: Double
    /// Only deployments of this release fail (nil: any release).
    var failRelease: String?
    /// Fraction of hosts that refuse every connection (nothing listens on their port).
    var refuseRate: Double
    var seed: UInt64

    /// Milliseconds from text: `250ms`, `2s`, or a range `50ms..400ms`.
    static func parseLatency(_ text: String) throws(LoadSimError) -> ClosedRange<Int64> {
        let parts = text.components(separatedBy: "..")
        guard (1...2).contains(parts.count) else {
            throw LoadSimError(.invalidOption, "--latency '\(text)' is not DURATION or DURATION..DURATION (e.g. 50ms..400ms)")
        }
        var bounds: [Int64] = []
        for part in parts {
            guard let duration = BatonDuration(parsing: part.trimmingCharacters(in: .whitespaces)) else {
                throw LoadSimError(.invalidOption, "--latency '\(text)': '\(part)' is not a duration such as 50ms or 2s")
            }
            bounds.append(Int64(duration.milliseconds))
        }
        guard bounds[0] <= bounds[bounds.count - 1] else {
            throw LoadSimError(.invalidOption, "--latency '\(text)': the lower bound is above the upper one")
        }
        return bounds[0]...bounds[bounds.count - 1]
    }

    static func checkRate(_ rate: Double, _ flag: String) throws(LoadSimError) -> Double {
        guard (0...1).contains(rate) else {
            throw LoadSimError(.invalidOption, "\(flag) \(rate) is not a fraction between 0 and 1")
        }
        return rate
    }

    /// A number in [0, 1) fixed by the seed and `key` (FNV-1a, then a SplitMix64 finaliser).
    func draw(_ key: String) -> Double {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325 ^ seed
        for byte in key.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        hash ^= hash >> 30
        hash &*= 0xbf58_476d_1ce4_e5b9
        hash ^= hash >> 27
        hash &*= 0x94d0_49bb_1331_11eb
        hash ^= hash >> 31
        return Double(hash >> 11) / Double(UInt64(1) << 53)
    }

    func refusesConnections(_ hostID: String) -> Bool { refuseRate > 0 && draw("refuse/\(hostID)") < refuseRate }

    func failsHealth(hostID: String, release: String, serial: UInt64, isReturn: Bool) -> Bool {
        guard failRate > 0, !isReturn, failRelease == nil || failRelease == release else { return false }
        return draw("fail/\(hostID)/\(release)/\(serial)") < failRate
    }

    /// How long phase `index` of deployment `id` on `hostID` lasts.
    func phaseLatency(hostID: String, deploymentID: String, index: Int) -> TimeAmount {
        let span = Double(latency.upperBound - latency.lowerBound)
        let value = latency.lowerBound + Int64((span * draw("latency/\(hostID)/\(deploymentID)/\(index)")).rounded())
        return .milliseconds(value)
    }
}
