import BatonProtocol
import Foundation

/// What kind of change a rollout record is, for delivery metrics (`baton report`): only
/// `rollout`s are deployments; `rollback`s are rework; a `drill`'s legs are practice and
/// count for nothing but the drill.
public enum RolloutKind: String, Codable, Sendable, CaseIterable {
    case rollout
    case rollback
    case drill
}

/// The history of drills and what delivery metrics need beyond a rollout record, kept by
/// both stores (migration `v7-drills` in SQLite, 4 in PostgreSQL). A protocol of its own
/// so the rollout engine's ``HistoryStore`` stays as it is.
public protocol DeliveryHistory: Sendable {
    /// Marks rollout `id` with its kind and the time its manifest was issued (the release's
    /// creation, where lead time starts).
    func noteRollout(id: String, kind: RolloutKind, issuedAt: Date?) throws(ControllerError)
    /// Inserts or replaces the drill's record.
    func saveDrill(_ drill: DrillRecord) throws(ControllerError)
    /// Newest first; `app` and `environment` filter when given.
    func drills(app: String?, environment: String?, limit: Int) throws(ControllerError) -> [DrillRecord]
    /// The newest drill of `app` in `environment` that succeeded.
    func lastSuccessfulDrill(app: String, environment: String) throws(ControllerError) -> DrillRecord?
}

/// One `baton drill`: the way back practised on a few hosts and undone.
public struct DrillRecord: Codable, Sendable, Equatable {
    public enum Outcome: String, Codable, Sendable {
        /// Every host went back to its previous release, passed its health checks there, and
        /// is on the release it was on before the drill.
        case succeeded
        /// The way back did not work on some host (refused, unhealthy, the agent went away),
        /// and every host is on the release it was on before the drill.
        case failed
        /// Stopped by SIGINT or SIGTERM; every host is on the release it was on before.
        case interrupted
        /// Some host is not on the release it was on before the drill, or could not be
        /// asked: `hosts` says which, and what to run.
        case needsAttention = "needs_attention"
    }

    /// What the drill did to one host.
    public struct Host: Codable, Sendable, Equatable {
        public var host: String
        /// The release live when the drill began: where the host must end.
        public var original: String?
        /// The release the drill returned it to (the one live before `original`).
        public var previous: String?
        /// The release the host is on when the drill ended, as its agent said; nil when it
        /// could not be asked.
        public var final: String?
        /// How the return to `previous` ended: the host's phase in that leg.
        public var back: HostPhase?
        /// How the return to `original` ended; nil when none was needed.
        public var forward: HostPhase?
        /// Seconds from sending the return to `previous` to the host being healthy there.
        public var timeToRecover: Double?
        public var error: ErrorInfo?
        public var needsAttention: Bool

        public init(host: String, original: String?, previous: String?) {
            self.host = host
            self.original = original
            self.previous = previous
            self.needsAttention = false
        }
    }

    /// Always `drill`: what tells this record from a rollout's in JSON output.
    public var kind = "drill"
    public var id: String
    public var app: String
    public var environment: String
    public var actor: String
    public var startedAt: Date
    public var finishedAt: Date?
    /// Nil while it runs (or when its controller died before it ended).
    public var outcome: Outcome?
    /// Why it did not succeed.
    public var reason: String?
    /// The longest of the hosts' times to recover, in seconds; nil when no host recovered.
    public var timeToRecover: Double?
    public var hosts: [Host]
    /// The rollouts (kind `drill`) that went back and that went forward again.
    public var rollouts: [String]

    public init(id: String, app: String, environment: String, actor: String, startedAt: Date, hosts: [Host]) {
        self.id = id
        self.app = app
        self.environment = environment
        self.actor = actor
        self.startedAt = startedAt
        self.hosts = hosts
        self.rollouts = []
    }

    /// The hosts to look at: not on their original release, or not asked.
    public var attention: [Host] { hosts.filter(\.needsAttention) }
}
