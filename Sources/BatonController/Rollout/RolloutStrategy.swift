import BatonProtocol
import Foundation

/// A count given as a number of hosts or a percentage of the hosts in the rollout
/// (`3` or `25%`). Percentages round up, so `10%` of 5 hosts is 1, never 0.
public enum HostCount: Sendable, Equatable, Codable, CustomStringConvertible {
    case hosts(Int)
    case percent(Int)

    public init?(_ text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed.hasSuffix("%") {
            guard let value = Int(trimmed.dropLast()), (0...100).contains(value) else { return nil }
            self = .percent(value)
        } else {
            guard let value = Int(trimmed), value >= 0 else { return nil }
            self = .hosts(value)
        }
    }

    public func resolve(total: Int) -> Int {
        switch self {
        case .hosts(let count): count
        case .percent(let percent): (total * percent + 99) / 100
        }
    }

    public var description: String {
        switch self {
        case .hosts(let count): "\(count)"
        case .percent(let percent): "\(percent)%"
        }
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let value = HostCount(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not N or N%: \(text)"))
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// How a rollout walks the fleet (docs/design.md §6): a canary wave alone, then batches, each
/// deployed with bounded parallelism; halted when failures exceed the threshold.
public struct RolloutStrategy: Sendable, Equatable, Codable {
    /// Hosts deployed first, alone. Any failure among them halts the rollout, whatever
    /// the failure threshold: that is what a canary is for.
    public var canary: Int = 0
    /// Stop after a healthy canary, in the `paused` state, until resumed or aborted.
    public var pauseAfterCanary = false
    /// Hosts per batch after the canary; nil means all the remaining hosts in one batch.
    public var batch: HostCount?
    /// Hosts deployed at the same time within a batch; nil means the whole batch.
    public var parallel: Int?
    /// Hosts that may be out of service at once: those deploying plus those that failed.
    public var maxUnavailable: HostCount?
    /// Failed hosts (unreachable included) tolerated before the rollout halts.
    public var failureThreshold: HostCount = .hosts(0)
    /// A wait between batches (not after the last).
    public var pause: BatonDuration?
    /// On a halt, leave switched hosts where they are instead of reverting them.
    public var autoRevert = true
    /// Artifact uploads at once; nil means no bound beyond `parallel`. Deployments still
    /// run `parallel` wide: only the transfers queue (``UploadSlots``). For a controller
    /// whose uplink is the limit (a laptop, a CI runner far from the fleet): the first
    /// hosts get their bytes early and deploy while the rest receive. bench/fleet.sh,
    /// where controller and agents share two cores, saw no gain from it (CPU is the limit
    /// there, not bandwidth), so it is not the default.
    public var uploadParallel: Int?
    /// Compare the canary with the hosts still on the old release once it has baked
    /// (``CanaryAnalysis``); from the app file's `analysis`.
    public var analysis: CanaryAnalysis?

    public init() {}

    /// The waves, as lists of indexes into `hosts`, in order: the canary, then the batches.
    public func waves(hostCount total: Int) -> [Wave] {
        var waves: [Wave] = []
        var next = 0
        let canaryCount = min(canary, total)
        if canaryCount > 0 {
            waves.append(Wave(name: "canary", hosts: Array(0..<canaryCount)))
            next = canaryCount
        }
        let remaining = total - next
        guard remaining > 0 else { return waves }
        let size = max(1, batch.map { $0.resolve(total: total) } ?? remaining)
        var number = 1
        while next < total {
            let end = min(total, next + size)
            waves.append(Wave(name: "batch \(number)", hosts: Array(next..<end)))
            next = end
            number += 1
        }
        return waves
    }

    public struct Wave: Sendable, Equatable {
        public var name: String
        public var hosts: [Int]
        public var isCanary: Bool { name == "canary" }
    }

    /// How many hosts of a wave may deploy at once, given the failures so far.
    public func width(waveSize: Int, total: Int, failedSoFar: Int) -> Int {
        var width = parallel.map { min($0, waveSize) } ?? waveSize
        if let maxUnavailable {
            width = min(width, maxUnavailable.resolve(total: total) - failedSoFar)
        }
        return max(0, width)
    }

    /// True when `failed` hosts exceed the threshold.
    public func exceedsThreshold(failed: Int, total: Int) -> Bool {
        failed > failureThreshold.resolve(total: total)
    }

    /// A one-line description for logs and history.
    public var summary: String {
        var parts: [String] = []
        if canary > 0 { parts.append("canary \(canary)\(pauseAfterCanary ? " then pause" : "")") }
        parts.append("batch \(batch?.description ?? "all")")
        if let parallel { parts.append("parallel \(parallel)") }
        if let uploadParallel { parts.append("upload-parallel \(uploadParallel)") }
        if let maxUnavailable { parts.append("max-unavailable \(maxUnavailable)") }
        parts.append("failure-threshold \(failureThreshold)")
        if let pause { parts.append("pause \(pause)") }
        if !autoRevert { parts.append("no auto-revert") }
        if analysis != nil, canary > 0 { parts.append("canary analysis") }
        return parts.joined(separator: ", ")
    }
}
