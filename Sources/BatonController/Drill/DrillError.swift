import BatonProtocol

/// Why a drill did not start. Each is found before any host is changed; the codes are the
/// ones `baton rollback` reports for the same situations where there is one.
public struct DrillError: CodedError, Equatable {
    public enum Code: String, Sendable, CaseIterable {
        /// A host never ran the app.
        case appUnknown = "app_unknown"
        /// A host ran no earlier release of the app: there is no way back to practise.
        case noPreviousRelease = "no_previous_release"
        /// A host no longer holds the release live before with its approved manifest.
        case previousReleaseGone = "previous_release_gone"
        /// A host does not hold its current release's approved manifest, so the drill could
        /// not bring it back under the rollback threshold: it is not practised there.
        case currentNotHeld = "current_not_held"
        /// A host's agent predates approved manifests in its status.
        case agentTooOld = "agent_too_old"
        /// A host did not answer.
        case hostUnreachable = "host_unreachable"
        /// A host is running a deployment of the app, or its last one did not succeed.
        case hostBusy = "host_busy"
        /// A host cannot read its state of the app.
        case stateCorrupt = "state_corrupt"
        /// A change freeze is in force for the environment: a drill is a change by choice.
        case changeFrozen = "change_frozen"
        /// The last drill of the app in the environment left a host on another release,
        /// and putting it back failed.
        case drillUnfinished = "drill_unfinished"
        /// A refusal of the return planner that has no code of its own here.
        case refused = "drill_refused"
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// A host's refusal from ``ReturnTarget`` under the drill's code for it.
    init(returnRefusal error: ErrorInfo) {
        self.init(Code(rawValue: error.code) ?? .refused, error.message)
    }

    public var reportedCode: String { code.rawValue }
    public var description: String { "\(code.rawValue): \(message)" }
}
