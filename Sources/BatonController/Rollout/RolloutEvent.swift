import BatonProtocol
import Foundation

/// Where one host stands in a rollout: the agent's own phases while it deploys, plus
/// the controller's phases around them.
public enum HostPhase: String, Codable, Sendable, CaseIterable {
    case pending, querying, uploading
    case accepted, fetching, unpacking, preparing, switching, activating, checking, baking
    case succeeded, failed
    case rolledBack = "rolled_back"
    case rollbackFailed = "rollback_failed"
    /// No answer after the retries; its state is unknown.
    case unreachable
    /// Not deployed because the rollout halted or paused first.
    case skipped
    case reverting, reverted
    case revertFailed = "revert_failed"

    public init(_ phase: DeploymentPhase) { self = HostPhase(rawValue: phase.rawValue)! }

    public var isFinal: Bool {
        switch self {
        case .succeeded, .failed, .rolledBack, .rollbackFailed, .unreachable, .skipped, .reverted, .revertFailed: true
        default: false
        }
    }

    /// Counted against the failure threshold.
    public var isFailure: Bool {
        switch self {
        case .failed, .rolledBack, .rollbackFailed, .unreachable: true
        default: false
        }
    }
}

/// One thing that happened in a rollout, as shown live and written with `--json` (one
/// object per line, `type` first in meaning: `started`, `wave`, `host`, `analysis`,
/// `halted`, `paused`, `revert`, `finished`).
public struct RolloutEvent: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case started, wave, host, halted, paused, revert, finished
        /// The canary analysis's verdict and numbers (``CanaryAnalysisReport``).
        case analysis
    }

    public var type: Kind
    public var time: Date
    public var rolloutID: String
    public var host: String?
    public var phase: HostPhase?
    public var wave: String?
    public var deploymentID: String?
    public var message: String
    public var error: ErrorInfo?

    public init(type: Kind, time: Date = Date(), rolloutID: String, host: String? = nil, phase: HostPhase? = nil,
                wave: String? = nil, deploymentID: String? = nil, message: String, error: ErrorInfo? = nil) {
        self.type = type
        self.time = time
        self.rolloutID = rolloutID
        self.host = host
        self.phase = phase
        self.wave = wave
        self.deploymentID = deploymentID
        self.message = message
        self.error = error
    }
}

/// What a host ended as.
public struct HostResult: Codable, Sendable, Equatable {
    public var host: String
    public var phase: HostPhase
    public var wave: String?
    /// The release live before the rollout, as the agent reported it.
    public var previousRelease: String?
    public var deploymentID: String?
    public var revertDeploymentID: String?
    public var error: ErrorInfo?
    /// The state of this host is unknown or wrong and a person should look.
    public var needsAttention: Bool
    public var startedAt: Date?
    public var finishedAt: Date?

    public init(host: String, phase: HostPhase = .pending) {
        self.host = host
        self.phase = phase
        self.needsAttention = false
    }
}

/// How a rollout ended, and the exit status the CLI gives it (README: exit statuses).
public enum RolloutOutcome: String, Codable, Sendable {
    /// Every host is on the new release.
    case succeeded
    /// Not every host succeeded, and every host is on a known, healthy release: reverted,
    /// rolled back by its agent, untouched, or within the failure threshold.
    case failed
    /// Halted (or finished) with hosts that need a person: revert failed, rollback failed,
    /// unreachable.
    case needsAttention = "needs_attention"
    /// Stopped after the canary, as asked; resume or abort it.
    case paused
    /// Ended by `baton rollout abort`: what it had moved went back (a host whose revert
    /// failed makes it `needs_attention` instead).
    case aborted
    /// Its controller lost the lock (broken, or taken over by another process) and stopped
    /// without deploying or reverting anything more: the new holder decides.
    case abandoned

    public var exitStatus: Int32 {
        switch self {
        case .succeeded: 0
        case .failed: 1
        case .needsAttention: 3
        case .paused: 5
        case .aborted: 1
        case .abandoned: 4
        }
    }
}

/// The end of a rollout: printed last, `type: "summary"` with `--json`.
public struct RolloutSummary: Codable, Sendable, Equatable {
    public var type = "summary"
    public var rolloutID: String
    public var app: String
    public var release: String
    public var serial: UInt64
    public var environment: String
    public var strategy: String
    public var outcome: RolloutOutcome
    public var exitStatus: Int32
    public var halted: Bool
    public var haltReason: String?
    public var startedAt: Date
    public var finishedAt: Date
    public var hosts: [HostResult]
    /// The serial of the revert manifests, when the rollout reverted hosts.
    public var revertSerial: UInt64?

    public var succeeded: [String] { hosts.filter { $0.phase == .succeeded }.map(\.host) }
    public var reverted: [String] { hosts.filter { $0.phase == .reverted }.map(\.host) }
    public var unreachable: [String] { hosts.filter { $0.phase == .unreachable }.map(\.host) }
    public var failed: [HostResult] { hosts.filter { [.failed, .rolledBack, .rollbackFailed, .revertFailed].contains($0.phase) } }
    public var skipped: [String] { hosts.filter { $0.phase == .skipped || $0.phase == .pending }.map(\.host) }
    public var attention: [String] { hosts.filter(\.needsAttention).map(\.host) }

    enum CodingKeys: String, CodingKey {
        case type, rolloutID, app, release, serial, environment, strategy, outcome, exitStatus, halted, haltReason
        case startedAt, finishedAt, hosts, revertSerial
        case succeeded, failed, reverted, unreachable, skipped, attention
    }

    public init(rolloutID: String, app: String, release: String, serial: UInt64, environment: String, strategy: String,
                outcome: RolloutOutcome, halted: Bool, haltReason: String?, startedAt: Date, finishedAt: Date,
                hosts: [HostResult]) {
        self.rolloutID = rolloutID
        self.app = app
        self.release = release
        self.serial = serial
        self.environment = environment
        self.strategy = strategy
        self.outcome = outcome
        self.exitStatus = outcome.exitStatus
        self.halted = halted
        self.haltReason = haltReason
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.hosts = hosts
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        rolloutID = try c.decode(String.self, forKey: .rolloutID)
        app = try c.decode(String.self, forKey: .app)
        release = try c.decode(String.self, forKey: .release)
        serial = try c.decode(UInt64.self, forKey: .serial)
        environment = try c.decode(String.self, forKey: .environment)
        strategy = try c.decode(String.self, forKey: .strategy)
        outcome = try c.decode(RolloutOutcome.self, forKey: .outcome)
        exitStatus = try c.decode(Int32.self, forKey: .exitStatus)
        halted = try c.decode(Bool.self, forKey: .halted)
        haltReason = try c.decodeIfPresent(String.self, forKey: .haltReason)
        startedAt = try c.decode(Date.self, forKey: .startedAt)
        finishedAt = try c.decode(Date.self, forKey: .finishedAt)
        hosts = try c.decode([HostResult].self, forKey: .hosts)
        revertSerial = try c.decodeIfPresent(UInt64.self, forKey: .revertSerial)
    }

    /// The lists are written too, so a CI job reads `succeeded` or `failed` without
    /// filtering `hosts` itself.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(type, forKey: .type)
        try c.encode(rolloutID, forKey: .rolloutID)
        try c.encode(app, forKey: .app)
        try c.encode(release, forKey: .release)
        try c.encode(serial, forKey: .serial)
        try c.encode(environment, forKey: .environment)
        try c.encode(strategy, forKey: .strategy)
        try c.encode(outcome, forKey: .outcome)
        try c.encode(exitStatus, forKey: .exitStatus)
        try c.encode(halted, forKey: .halted)
        try c.encodeIfPresent(haltReason, forKey: .haltReason)
        try c.encode(startedAt, forKey: .startedAt)
        try c.encode(finishedAt, forKey: .finishedAt)
        try c.encode(hosts, forKey: .hosts)
        try c.encodeIfPresent(revertSerial, forKey: .revertSerial)
        try c.encode(succeeded, forKey: .succeeded)
        try c.encode(failed.map { FailedHost(host: $0.host, phase: $0.phase, error: $0.error) }, forKey: .failed)
        try c.encode(reverted, forKey: .reverted)
        try c.encode(unreachable, forKey: .unreachable)
        try c.encode(skipped, forKey: .skipped)
        try c.encode(attention, forKey: .attention)
    }

    struct FailedHost: Codable {
        var host: String
        var phase: HostPhase
        var error: ErrorInfo?
    }
}
