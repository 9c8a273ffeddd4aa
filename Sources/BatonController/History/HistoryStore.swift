import BatonProtocol
import Foundation

/// Where rollouts, their hosts' results and events, and rollout locks are kept. SQLite
/// (``SQLiteHistoryStore``) by default, or a PostgreSQL database a team shares
/// (``PostgresHistoryStore``); the rollout engine and the commands see only this protocol
/// (docs/history-store.md).
public protocol HistoryStore: Sendable {
    func rolloutStarted(_ rollout: RolloutRecord) throws(ControllerError)
    func record(_ event: RolloutEvent) throws(ControllerError)
    /// Several events of one rollout, in order, in one transaction (`RolloutEventRecorder`).
    func record(_ events: [RolloutEvent]) throws(ControllerError)
    func rolloutFinished(_ summary: RolloutSummary) throws(ControllerError)
    /// Records a rollout as `abandoned` (its controller lost the lock) only if it has no
    /// outcome yet, in one statement: whoever took the lock over under the same id may have
    /// ended it already, and a killed controller cannot record its own end. True when it did.
    func rolloutAbandoned(id: String, reason: String, now: Date) throws(ControllerError) -> Bool
    /// Newest first.
    func rollouts(app: String?, limit: Int) throws(ControllerError) -> [RolloutRecord]
    func rollout(id: String) throws(ControllerError) -> RolloutRecord?
    func events(rolloutID: String) throws(ControllerError) -> [RolloutEvent]
    /// What `baton rollout resume|abort` needs to pick a rollout up again.
    /// Every signed audit head the controller saw, per host, with its verdict; the newest
    /// one without a problem (or accepted by an operator) is what the next is checked against.
    func recordAuditHead(_ head: SeenAuditHead) throws(ControllerError)
    func lastAuditHead(host: String) throws(ControllerError) -> SeenAuditHead?

    func saveResumeInfo(_ info: RolloutResumeInfo) throws(ControllerError)
    func resumeInfo(rolloutID: String) throws(ControllerError) -> RolloutResumeInfo?

    /// Takes the lock of `app` in `environment`, or takes over one whose lease ran out.
    /// Every acquisition or takeover gets a new term, higher than any before it for this app
    /// and environment, even after the lock was released or broken.
    func acquireLock(_ request: LockRequest, now: Date) throws(ControllerError) -> LockAcquisition
    /// Takes over a live lock from `holder` (its controller is known to be gone), only if
    /// `holder` (same term) still holds it; otherwise answers who does.
    func takeOverLock(_ request: LockRequest, from holder: RolloutLock, reason: String, now: Date) throws(ControllerError) -> LockAcquisition
    /// Extends the lease; false when the lock is no longer ours (broken or taken over).
    /// Acts only when both the rollout id and the term match: a rollout resumed or aborted by
    /// another process has the same id but not the same term, so the two never renew each
    /// other's lease.
    func renewLock(app: String, environment: String, rolloutID: String, term: Int, lease: TimeInterval, now: Date) throws(ControllerError) -> Bool
    /// Removes the lock only when both the rollout id and the term match: nothing deletes a
    /// lock it does not hold.
    func releaseLock(app: String, environment: String, rolloutID: String, term: Int, now: Date) throws(ControllerError)
    /// Removes a lock whoever holds it, recording who and why. Nil when there was none.
    func breakLock(app: String, environment: String, actor: String, reason: String, now: Date) throws(ControllerError) -> RolloutLock?
    func locks() throws(ControllerError) -> [RolloutLock]
    func lockEvents(app: String?) throws(ControllerError) -> [LockEvent]
    /// The schema migrations this store has applied, oldest first (`baton history migrations`).
    func migrations() throws(ControllerError) -> [AppliedMigration]
}

/// A rollout as the history keeps it.
public struct RolloutRecord: Codable, Sendable, Equatable {
    public var id: String
    public var app: String
    public var release: String
    public var serial: UInt64
    public var environment: String
    public var strategy: String
    /// Who ran it: `user@host` and the controller's pid.
    public var actor: String
    public var signers: [String]
    public var owner: String?
    public var notes: String?
    public var source: String?
    public var startedAt: Date
    public var finishedAt: Date?
    /// Nil while it runs (or when its controller died before recording the end).
    public var outcome: RolloutOutcome?
    public var exitStatus: Int32?
    public var halted: Bool
    public var haltReason: String?
    public var revertSerial: UInt64?
    public var hosts: [HostResult]
    /// It went out during a change freeze of its environment, signed to break glass.
    public var breakGlass = false
    /// A rollout, a rollback, or a leg of a drill (``DeliveryHistory``).
    public var kind: RolloutKind = .rollout
    /// When its manifest was issued: for a release, its creation (where lead time starts).
    /// Nil in records from before it was kept.
    public var issuedAt: Date?

    public init(id: String, app: String, release: String, serial: UInt64, environment: String, strategy: String,
                actor: String, signers: [String], owner: String?, notes: String?, source: String?, startedAt: Date,
                hosts: [HostResult]) {
        self.id = id
        self.app = app
        self.release = release
        self.serial = serial
        self.environment = environment
        self.strategy = strategy
        self.actor = actor
        self.signers = signers
        self.owner = owner
        self.notes = notes
        self.source = source
        self.startedAt = startedAt
        self.halted = false
        self.hosts = hosts
    }
}

/// The envelope, hosts and strategy of a rollout, kept so that another controller process
/// can resume or abort it.
public struct RolloutResumeInfo: Codable, Sendable, Equatable {
    public var rolloutID: String
    public var envelope: [UInt8]
    public var hostIDs: [String]
    public var strategy: RolloutStrategy
    public var artifactFile: String?

    public init(rolloutID: String, envelope: [UInt8], hostIDs: [String], strategy: RolloutStrategy, artifactFile: String?) {
        self.rolloutID = rolloutID
        self.envelope = envelope
        self.hostIDs = hostIDs
        self.strategy = strategy
        self.artifactFile = artifactFile
    }
}

/// Who asks for a lock, for how long.
public struct LockRequest: Sendable, Equatable {
    public var app: String
    public var environment: String
    public var rolloutID: String
    /// `user@host`.
    public var owner: String
    public var pid: Int32
    public var lease: TimeInterval

    public init(app: String, environment: String, rolloutID: String, owner: String, pid: Int32, lease: TimeInterval) {
        self.app = app
        self.environment = environment
        self.rolloutID = rolloutID
        self.owner = owner
        self.pid = pid
        self.lease = lease
    }
}

/// One running rollout per app and environment.
public struct RolloutLock: Codable, Sendable, Equatable {
    public var app: String
    public var environment: String
    public var rolloutID: String
    public var owner: String
    public var pid: Int32
    public var acquiredAt: Date
    public var renewedAt: Date
    public var expiresAt: Date
    /// Grows on every acquisition and takeover of this app and environment's lock: what
    /// tells the holder from a later process working on the same rollout id.
    public var term: Int
}

public enum LockAcquisition: Sendable, Equatable {
    case acquired(term: Int)
    /// The previous holder's lease had run out; the takeover is recorded.
    case tookOver(RolloutLock, term: Int)
    /// Someone else holds it and the lease is live (another process working on the same
    /// rollout id is someone else).
    case held(RolloutLock)
}

/// What happened to a lock, for `baton lock list --events` and the history.
public struct LockEvent: Codable, Sendable, Equatable {
    public var time: Date
    public var app: String
    public var environment: String
    /// `acquired`, `released`, `taken_over`, `broken`.
    public var action: String
    public var rolloutID: String?
    public var actor: String
    public var detail: String?
}

/// `user@host` for the current process.
public enum ControllerActor {
    public static var current: String {
        let user = ProcessInfo.processInfo.environment["USER"] ?? ProcessInfo.processInfo.environment["LOGNAME"] ?? "uid\(getuid())"
        return "\(user)@\(ProcessInfo.processInfo.hostName)"
    }
}

extension HistoryStore {
    /// One write per event, for stores with nothing better.
    public func record(_ events: [RolloutEvent]) throws(ControllerError) {
        for event in events { try record(event) }
    }
}
