import BatonProtocol
import Foundation

extension RolloutStateMachine {
    /// What happened: what the runner's calls to agents answered, or what the operator or
    /// the lock did. Each carries the time it happened, the machine's only clock.
    public enum Event: Sendable, Equatable {
        /// `baton rollout` (or `resume`, whose request carries `knownPrevious`).
        case start(now: Date)
        /// `baton rollout abort`: every host on the release goes back; nothing is deployed.
        case abort(reason: String, now: Date)
        /// A host answered the query for the app's state (nil: it never ran the app).
        case statusAnswered(host: String, status: AppStatus?, now: Date)
        /// A host could not be asked for its state.
        case statusFailed(host: String, error: AgentCallError, now: Date)
        /// Word about a host's artifact upload (waiting for a slot, checking, sent).
        case uploadProgress(host: String, message: String, now: Date)
        /// The agent accepted the envelope (a deployment, or during a revert, the revert).
        case accepted(host: String, deploymentID: String, existing: Bool, now: Date)
        /// One step of the agent's deployment (or of the revert), as it streamed it.
        case agentEvent(host: String, event: DeploymentEvent, now: Date)
        /// The host's deployment ended: the agent's final phase, or `unreachable`/`failed`
        /// when the calls to it failed (``HostPhase/init(callError:)``).
        case hostFinished(host: String, phase: HostPhase, error: ErrorInfo?, deploymentID: String?, now: Date)
        /// The host's revert ended.
        case revertFinished(host: String, end: RevertEnd, now: Date)
        /// Ctrl-C: halt as a failure would.
        case interrupt(reason: String, now: Date)
        /// The lock is someone else's now.
        case lockLost(reason: String, now: Date)
        /// The answer to ``Action/checkLock``.
        case lockChecked(holds: Bool, now: Date)
        /// The wait of ``Action/waitUntil(_:)`` is over.
        case pauseElapsed(now: Date)
        /// The answer to ``Action/analyse(_:)``, by verdict: the rollout goes on, halts
        /// and reverts the canary, or pauses for a person.
        case analysisPassed(CanaryAnalysisReport, now: Date)
        case analysisFailed(CanaryAnalysisReport, now: Date)
        case analysisInconclusive(CanaryAnalysisReport, now: Date)
    }

    /// How a host's revert ended.
    public enum RevertEnd: Sendable, Equatable {
        /// The agent ran the revert to this terminal phase.
        case ended(phase: DeploymentPhase, deploymentID: String, error: ErrorInfo?)
        /// The calls to the agent failed (or the revert could not be sent).
        case callFailed(ErrorInfo)
    }

    /// What the runner must do next. Everything but ``finish(_:)`` may come in any number.
    public enum Action: Sendable, Equatable {
        /// Ask each host for the app's state; answer with `statusAnswered`/`statusFailed`.
        case query([String])
        /// Deploy the envelope to the host, uploading the artifact first when `upload`;
        /// report with `uploadProgress`, `accepted`, `agentEvent`, then `hostFinished`.
        case deploy(host: String, upload: Bool)
        /// Answer with `pauseElapsed` at `date`, unless ``cancelWait`` comes first.
        case waitUntil(Date)
        /// The wait is over early (a halt): drop it, do not send `pauseElapsed`.
        case cancelWait
        /// Ask whether the rollout still holds its lock; answer with `lockChecked`.
        case checkLock
        /// Sign each group's manifest with the controller's key and send it to the group's
        /// hosts, all at once; report with `accepted`, `agentEvent`, `revertFinished`.
        case revert(RevertPlan)
        /// Report this to the operator (and the history).
        case emit(RolloutEvent)
        /// The rollout is over.
        case finish(RolloutSummary)
        /// Compare the canary hosts with the baseline (the strategy's analysis); answer
        /// with `analysisPassed`, `analysisFailed` or `analysisInconclusive`.
        case analyse(AnalysisRequest)
    }

    /// The hosts a canary analysis compares, each with the release it runs.
    public struct AnalysisRequest: Sendable, Equatable {
        public var canary: [String: String?]
        public var baseline: [String: String?]
    }

    /// A halted rollout's way back: one manifest per approved manifest the hosts go back to.
    public struct RevertPlan: Sendable, Equatable {
        public var serial: UInt64
        public var groups: [RevertGroup]

        public var hosts: [String] { groups.flatMap(\.hosts) }
    }

    /// Hosts that go back to the same approved manifest share one signed envelope: the
    /// approved manifest with a new serial, validity and reason, so each agent runs
    /// exactly what was approved.
    public struct RevertGroup: Sendable, Equatable {
        /// The digest of the approved payload the group returns to.
        public var approvedPayloadDigest: String
        /// The unsigned return manifest; the runner signs it.
        public var manifest: Manifest
        public var hosts: [String]
    }
}

extension HostPhase {
    /// A host whose calls failed: `unreachable` when no connection was made (its state is
    /// unknown), `failed` otherwise.
    public init(callError: AgentCallError) {
        self = callError.kind == .unreachable ? .unreachable : .failed
    }
}
