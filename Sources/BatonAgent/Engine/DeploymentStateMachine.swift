import BatonProtocol

/// The deployment's phases as a pure state machine: given what the last step did, it
/// says which phase comes next and what to do there. No I/O, no clock: every transition
/// is tested without files or processes, and the engine only performs the steps.
///
/// ```
/// accepted → fetching → unpacking → preparing → switching → activating → checking → baking → succeeded
///      any failure before the switch                     → failed        (current never changed)
///      any failure from the switch on                    → rolling back  → rolled_back | rollback_failed
/// ```
struct DeploymentStateMachine: Sendable, Equatable {
    enum Step: Sendable, Equatable {
        case fetch, unpack, prepare, switchOver, activate, check, bake
        /// Mark succeeded and apply retention.
        case complete
        /// Nothing was switched: clean up and end `failed`.
        case fail(ErrorInfo)
        /// Something was switched: restore the previous release, then end.
        case rollBack(ErrorInfo)
        /// The end; nothing more to do.
        case done
    }

    enum Outcome: Sendable, Equatable {
        case succeeded
        case failed(ErrorInfo)
    }

    private(set) var phase: DeploymentPhase
    /// Set once a rollback started, so its outcome ends the deployment.
    private(set) var rollingBack = false
    let hasBake: Bool

    init(phase: DeploymentPhase = .accepted, hasBake: Bool) {
        self.phase = phase
        self.hasBake = hasBake
    }

    /// The first step of a new deployment.
    mutating func start() -> Step {
        precondition(phase == .accepted)
        phase = .fetching
        return .fetch
    }

    /// What to do after the current step finished with `outcome`.
    mutating func advance(_ outcome: Outcome) -> Step {
        if rollingBack {
            switch outcome {
            case .succeeded: phase = .rolledBack
            case .failed: phase = .rollbackFailed
            }
            return .done
        }
        if case .failed(let error) = outcome {
            if phase.isAfterSwitch {
                rollingBack = true
                return .rollBack(error)
            }
            phase = .failed
            return .fail(error)
        }
        switch phase {
        case .accepted: phase = .fetching; return .fetch
        case .fetching: phase = .unpacking; return .unpack
        case .unpacking: phase = .preparing; return .prepare
        case .preparing: phase = .switching; return .switchOver
        case .switching: phase = .activating; return .activate
        case .activating: phase = .checking; return .check
        case .checking:
            if hasBake {
                phase = .baking
                return .bake
            }
            phase = .succeeded
            return .complete
        case .baking: phase = .succeeded; return .complete
        case .succeeded, .failed, .rolledBack, .rollbackFailed: return .done
        }
    }

    /// What a restarted agent does with a deployment it finds in `phase`: before the
    /// switch nothing is live, so it is recorded as failed; from the switch on, the
    /// previous release is restored (docs/design.md §5, reconciliation).
    static func reconcile(_ phase: DeploymentPhase, error: ErrorInfo) -> (machine: DeploymentStateMachine, step: Step) {
        var machine = DeploymentStateMachine(phase: phase, hasBake: false)
        if phase.isTerminal { return (machine, .done) }
        if phase.isAfterSwitch {
            machine.rollingBack = true
            return (machine, .rollBack(error))
        }
        machine.phase = .failed
        return (machine, .fail(error))
    }
}
