#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The phases of a deployment on one host (docs/design.md §5). Terminal phases end it.
public enum DeploymentPhase: String, Codable, Sendable, CaseIterable, Comparable {
    case accepted, fetching, unpacking, preparing, switching, activating, checking, baking, succeeded
    /// Ended before anything was switched: the previous release never stopped being live.
    case failed
    /// Switched, then failed; the previous release was restored, re-activated and is healthy.
    case rolledBack = "rolled_back"
    /// Switched, failed, and restoring the previous release failed too. Needs a person.
    case rollbackFailed = "rollback_failed"

    public var isTerminal: Bool {
        switch self {
        case .succeeded, .failed, .rolledBack, .rollbackFailed: true
        default: false
        }
    }

    /// True once `current` may name the new release (the switch was started).
    public var isAfterSwitch: Bool {
        switch self {
        case .switching, .activating, .checking, .baking: true
        default: false
        }
    }

    public static func < (a: DeploymentPhase, b: DeploymentPhase) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// Why a deployment or a request failed: a stable code and words for a person.
public struct ErrorInfo: Codable, Sendable, Equatable, Error, CustomStringConvertible {
    public var code: String
    public var message: String

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}

/// The body of every error answer: `{"error": {"code": "...", "message": "..."}}`.
public struct ErrorDocument: Codable, Sendable, Equatable {
    public var error: ErrorInfo

    public init(code: String, message: String) { error = ErrorInfo(code: code, message: message) }
}

/// One step of a deployment, as streamed by `GET /v1/deployments/{id}/events`.
public struct DeploymentEvent: Codable, Sendable, Equatable {
    /// 1, 2, 3... within the deployment: a client that reconnects skips what it has seen.
    public var sequence: Int
    public var time: Date
    public var deploymentID: String
    public var app: String
    public var release: String
    /// The phase the deployment is in after this event.
    public var phase: DeploymentPhase
    public var message: String
    /// Set on events that report a failure.
    public var error: ErrorInfo?

    public init(sequence: Int, time: Date, deploymentID: String, app: String, release: String,
                phase: DeploymentPhase, message: String, error: ErrorInfo? = nil) {
        self.sequence = sequence
        self.time = time
        self.deploymentID = deploymentID
        self.app = app
        self.release = release
        self.phase = phase
        self.message = message
        self.error = error
    }
}

/// What a hook did.
public struct HookRun: Codable, Sendable, Equatable {
    /// `prepare`, `activate`, or `rollback-activate` (the previous release's activate, re-run).
    public var hook: String
    public var release: String
    public var command: [String]
    public var startedAt: Date
    public var durationMilliseconds: Int
    /// Exit status when it exited; nil when it was killed.
    public var exitStatus: Int32?
    /// The signal that ended it, if one did.
    public var signal: Int32?
    public var timedOut: Bool
    /// The last bytes of its output (the agent's `limits.hookOutputBytes`).
    public var stdoutTail: String
    public var stderrTail: String

    public init(hook: String, release: String, command: [String], startedAt: Date, durationMilliseconds: Int,
                exitStatus: Int32?, signal: Int32?, timedOut: Bool, stdoutTail: String, stderrTail: String) {
        self.hook = hook
        self.release = release
        self.command = command
        self.startedAt = startedAt
        self.durationMilliseconds = durationMilliseconds
        self.exitStatus = exitStatus
        self.signal = signal
        self.timedOut = timedOut
        self.stdoutTail = stdoutTail
        self.stderrTail = stderrTail
    }

    public var succeeded: Bool { exitStatus == 0 && !timedOut }
}

/// One attempt of one health check.
public struct HealthAttempt: Codable, Sendable, Equatable {
    /// `checking`, `baking`, or `rollback`.
    public var stage: String
    public var release: String
    public var check: String
    public var time: Date
    public var durationMilliseconds: Int
    public var passed: Bool
    public var detail: String
    /// A `prometheus` check's measurement: value, bounds, verdict and counts.
    public var measurement: MetricMeasurement?

    public init(stage: String, release: String, check: String, time: Date, durationMilliseconds: Int,
                passed: Bool, detail: String, measurement: MetricMeasurement? = nil) {
        self.stage = stage
        self.release = release
        self.check = check
        self.time = time
        self.durationMilliseconds = durationMilliseconds
        self.passed = passed
        self.detail = detail
        self.measurement = measurement
    }
}

/// When a phase started and ended.
public struct PhaseTiming: Codable, Sendable, Equatable {
    public var phase: DeploymentPhase
    public var startedAt: Date
    public var endedAt: Date?

    public init(phase: DeploymentPhase, startedAt: Date, endedAt: Date? = nil) {
        self.phase = phase
        self.startedAt = startedAt
        self.endedAt = endedAt
    }
}

/// Everything a host knows about one deployment: `GET /v1/deployments/{id}`.
public struct DeploymentRecord: Codable, Sendable, Equatable {
    public var id: String
    public var hostID: String
    public var app: String
    public var release: String
    public var serial: UInt64
    public var environment: String
    public var payloadDigest: String
    public var artifactSHA256: String
    public var signers: [Signer]
    /// The release already succeeded on this host before (accepted under rollbackThreshold).
    public var isRollback: Bool
    /// What `current` named when the deployment was accepted.
    public var previousRelease: String?
    public var phase: DeploymentPhase
    /// Set when the deployment ended in anything but `succeeded`.
    public var error: ErrorInfo?
    public var createdAt: Date
    public var updatedAt: Date
    public var finishedAt: Date?
    public var timings: [PhaseTiming]
    public var events: [DeploymentEvent]
    public var hooks: [HookRun]
    public var healthAttempts: [HealthAttempt]
    /// Set when the agent found this deployment interrupted at start and settled it.
    public var reconciliation: String?
    public var owner: String?
    public var notes: String?
    public var source: String?
    /// The agent's signed receipt, once the deployment has ended (`GET
    /// /v1/deployments/{id}` attaches it; the record on disk never holds it).
    public var receipt: SignedReceipt?

    public init(id: String, hostID: String, app: String, release: String, serial: UInt64, environment: String,
                payloadDigest: String, artifactSHA256: String, signers: [Signer], isRollback: Bool,
                previousRelease: String?, phase: DeploymentPhase, createdAt: Date,
                owner: String? = nil, notes: String? = nil, source: String? = nil) {
        self.id = id
        self.hostID = hostID
        self.app = app
        self.release = release
        self.serial = serial
        self.environment = environment
        self.payloadDigest = payloadDigest
        self.artifactSHA256 = artifactSHA256
        self.signers = signers
        self.isRollback = isRollback
        self.previousRelease = previousRelease
        self.phase = phase
        self.error = nil
        self.createdAt = createdAt
        self.updatedAt = createdAt
        self.finishedAt = nil
        self.timings = []
        self.events = []
        self.hooks = []
        self.healthAttempts = []
        self.reconciliation = nil
        self.owner = owner
        self.notes = notes
        self.source = source
    }
}

/// `POST /v1/deployments` answer: 202 for a new deployment, 200 for an identical resend.
public struct DeploymentAccepted: Codable, Sendable, Equatable {
    public var id: String
    public var phase: DeploymentPhase
    /// True when the envelope was a resend and this is the deployment it started before.
    public var existing: Bool

    public init(id: String, phase: DeploymentPhase, existing: Bool) {
        self.id = id
        self.phase = phase
        self.existing = existing
    }
}

/// One app on one host: `GET /v1/apps/{app}`.
public struct AppStatus: Codable, Sendable, Equatable {
    public var app: String
    /// The release `current` names.
    public var current: String?
    /// The release that was live before `current` (from `liveHistory`): the way back.
    /// Retention always keeps it, so it is in `held` unless the host was upgraded from an
    /// agent that kept no approved manifests.
    public var previous: String?
    public var lastSerial: UInt64?
    public var lastDeploymentID: String?
    public var lastPhase: DeploymentPhase?
    public var lastError: ErrorInfo?
    /// The deployment running now, if any.
    public var activeDeploymentID: String?
    /// Releases on disk, newest first.
    public var releases: [String]
    /// Releases on disk that reached `succeeded` on this host.
    public var succeededReleases: [String]
    /// The artifact each release on disk was installed from. Absent from agents before it
    /// was added; nil then.
    public var releaseArtifacts: [String: ArtifactReference]?
    /// The releases this host can return to under `rollbackThreshold`, each with the
    /// manifest it was approved with (newest live first). A return is built from
    /// `approved` (`Manifest.returning(to:...)`). Nil from older agents.
    public var held: [HeldRelease]?
    /// The releases that were live, newest first (bounded): what `previous` is read from.
    public var liveHistory: [LiveRelease]?
    public var updatedAt: Date?
    /// Set when the app's state file, or the record of its last or running deployment,
    /// cannot be read (`state_corrupt`, naming the file and what to do). The app is still
    /// listed; what the unreadable file held is absent, `current` is read from the link.
    /// The agent refuses deployments of the app until a person rebuilds its state.
    public var stateError: ErrorInfo?

    public init(app: String, current: String? = nil, previous: String? = nil, lastSerial: UInt64? = nil,
                lastDeploymentID: String? = nil, lastPhase: DeploymentPhase? = nil, lastError: ErrorInfo? = nil,
                activeDeploymentID: String? = nil, releases: [String] = [], succeededReleases: [String] = [],
                releaseArtifacts: [String: ArtifactReference]? = nil, held: [HeldRelease]? = nil,
                liveHistory: [LiveRelease]? = nil, updatedAt: Date? = nil, stateError: ErrorInfo? = nil) {
        self.app = app
        self.current = current
        self.previous = previous
        self.lastSerial = lastSerial
        self.lastDeploymentID = lastDeploymentID
        self.lastPhase = lastPhase
        self.lastError = lastError
        self.activeDeploymentID = activeDeploymentID
        self.releases = releases
        self.succeededReleases = succeededReleases
        self.releaseArtifacts = releaseArtifacts
        self.held = held
        self.liveHistory = liveHistory
        self.updatedAt = updatedAt
        self.stateError = stateError
    }

    /// The approved manifest of `release`, if the host can return to it.
    public func approvedManifest(of release: String) -> Manifest? {
        held?.first { $0.release == release }?.approved
    }
}

/// A release a host holds and can return to: on disk, succeeded there, with the manifest
/// approved for it under the environment's full threshold.
public struct HeldRelease: Codable, Sendable, Equatable {
    public var release: String
    /// The approved manifest, parsed from the approved payload.
    public var approved: Manifest
    /// SHA-256 of the approved payload bytes (the evidence: `GET /v1/apps/{app}/releases/{release}`).
    public var approvedPayloadDigest: String
    /// The keys whose signatures approved it.
    public var approvedBy: [Signer]

    public init(release: String, approved: Manifest, approvedPayloadDigest: String, approvedBy: [Signer]) {
        self.release = release
        self.approved = approved
        self.approvedPayloadDigest = approvedPayloadDigest
        self.approvedBy = approvedBy
    }
}

/// One release becoming live on a host (a deployment that succeeded with it).
public struct LiveRelease: Codable, Sendable, Equatable {
    public var release: String
    public var since: Date
    public var deploymentID: String?

    public init(release: String, since: Date, deploymentID: String?) {
        self.release = release
        self.since = since
        self.deploymentID = deploymentID
    }
}

/// The evidence for one held release: `GET /v1/apps/{app}/releases/{release}`. The exact
/// payload bytes that were approved (base64), their digest, who approved them under
/// which threshold, and which deployment brought them.
public struct ApprovedRelease: Codable, Sendable, Equatable {
    public var app: String
    public var release: String
    /// The approved payload, standard base64 (as in a DSSE envelope).
    public var payload: String
    public var payloadDigest: String
    public var signers: [Signer]
    /// The environment's full threshold when it was approved.
    public var requiredSignatures: Int
    public var serial: UInt64
    public var deploymentID: String
    public var approvedAt: Date

    public init(app: String, release: String, payload: String, payloadDigest: String, signers: [Signer],
                requiredSignatures: Int, serial: UInt64, deploymentID: String, approvedAt: Date) {
        self.app = app
        self.release = release
        self.payload = payload
        self.payloadDigest = payloadDigest
        self.signers = signers
        self.requiredSignatures = requiredSignatures
        self.serial = serial
        self.deploymentID = deploymentID
        self.approvedAt = approvedAt
    }
}

/// `GET /v1/apps`.
public struct AppList: Codable, Sendable, Equatable {
    public var apps: [AppStatus]
    public init(apps: [AppStatus]) { self.apps = apps }
}

/// `GET /v1/health`: the agent itself is up.
public struct AgentHealth: Codable, Sendable, Equatable {
    /// `ok`, or `degraded` when the agent serves but something needs an operator (its
    /// audit chain is broken).
    public var status: String
    public var hostID: String
    public var environment: String
    public var version: String
    public var startedAt: Date
    /// The audit chain: its length and head, and why it is not intact if it is not.
    public var audit: AuditChainStatus?

    public init(status: String = "ok", hostID: String, environment: String, version: String, startedAt: Date,
                audit: AuditChainStatus? = nil) {
        self.status = status
        self.hostID = hostID
        self.environment = environment
        self.version = version
        self.startedAt = startedAt
        self.audit = audit
    }
}

/// The state of an agent's hash-chained audit log.
public struct AuditChainStatus: Codable, Sendable, Equatable {
    public var intact: Bool
    public var lines: Int
    /// SHA-256 (hex) of the last line.
    public var head: String
    public var problem: String?

    public init(intact: Bool, lines: Int, head: String, problem: String? = nil) {
        self.intact = intact
        self.lines = lines
        self.head = head
        self.problem = problem
    }
}

/// `GET /v1/audit/head`: the head of an agent's audit chain, signed with the agent's own
/// TLS key (ECDSA P-256 over `signedText`), so a controller can keep it as evidence and
/// later show that a host's log went backwards, forked, or disappeared.
public struct SignedAuditHead: Codable, Sendable, Equatable {
    public var hostID: String
    public var lines: Int
    public var hash: String
    public var time: Date
    /// DER ECDSA signature, base64, by the key of the agent's TLS certificate.
    public var signature: String
    /// When asked for (`?line=N`): the hash of line N of the current chain, to compare
    /// with a head recorded earlier.
    public var at: LineHash?
    public var problem: String?

    public struct LineHash: Codable, Sendable, Equatable {
        public var line: Int
        /// nil when the chain has fewer lines.
        public var hash: String?

        public init(line: Int, hash: String?) {
            self.line = line
            self.hash = hash
        }
    }

    public init(hostID: String, lines: Int, hash: String, time: Date, signature: String, at: LineHash? = nil, problem: String? = nil) {
        self.hostID = hostID
        self.lines = lines
        self.hash = hash
        self.time = time
        self.signature = signature
        self.at = at
        self.problem = problem
    }

    /// The bytes signed: a fixed prefix, then host, line count, head hash and time.
    public static func signedText(hostID: String, lines: Int, hash: String, time: Date) -> [UInt8] {
        Array("baton-audit-head-v1\n\(hostID)\n\(lines)\n\(hash)\n\(RFC3339.format(time))\n".utf8)
    }

    public var signedText: [UInt8] { Self.signedText(hostID: hostID, lines: lines, hash: hash, time: time) }
}

/// The answer to `PUT /v1/artifacts/sha256/{digest}`: what the agent now holds.
public struct ArtifactReceipt: Codable, Sendable, Equatable {
    public var sha256: String
    public var size: UInt64
    /// True when the agent already held the artifact and the upload was not needed.
    public var existing: Bool

    public init(sha256: String, size: UInt64, existing: Bool) {
        self.sha256 = sha256
        self.size = size
        self.existing = existing
    }
}
