@testable import BatonController
import BatonProtocol
import Foundation

/// Feeds a ``RolloutStateMachine`` events as the runner would, at a clock the test moves,
/// and keeps every action it returned.
struct RolloutMachineDriver {
    typealias Event = RolloutStateMachine.Event
    typealias Action = RolloutStateMachine.Action

    var machine: RolloutStateMachine
    var now = RolloutFixture.t0
    var actions: [Action] = []
    /// The actions of the last event.
    var last: [Action] = []

    init(_ request: RolloutRequest) { machine = RolloutStateMachine(request: request) }

    @discardableResult
    mutating func send(_ event: (Date) -> Event) -> [Action] {
        last = machine.handle(event(now))
        actions += last
        return last
    }

    mutating func advance(_ seconds: TimeInterval) { now = now.addingTimeInterval(seconds) }

    /// Starts the rollout, every host answering `status` (or its entry in `statuses`; a
    /// nil entry: unreachable), and answers the lock check that follows.
    mutating func start(_ hosts: [String], statuses: [String: AppStatus?] = [:], status: AppStatus = RolloutFixture.status()) {
        send { .start(now: $0) }
        answerQuery(hosts, statuses: statuses, status: status)
        if last.contains(.checkLock) { send { .lockChecked(holds: true, now: $0) } }
    }

    mutating func answerQuery(_ hosts: [String], statuses: [String: AppStatus?], status: AppStatus) {
        for host in hosts {
            if let entry = statuses[host] {
                if let entry {
                    send { .statusAnswered(host: host, status: entry, now: $0) }
                } else {
                    send { .statusFailed(host: host, error: AgentCallError(.unreachable, code: "agent_unreachable", message: "\(host) did not answer"), now: $0) }
                }
            } else {
                send { .statusAnswered(host: host, status: status, now: $0) }
            }
        }
    }

    /// The host's deployment ends in `phase`; a lock check that follows is answered `holds`.
    mutating func finish(_ host: String, _ phase: HostPhase = .succeeded, holds: Bool = true) {
        let error = phase == .succeeded ? nil : ErrorInfo(code: "health_check_failed", message: "\(host) is not healthy")
        send { .hostFinished(host: host, phase: phase, error: error, deploymentID: "dep-\(host)", now: $0) }
        if last.contains(.checkLock) { send { .lockChecked(holds: holds, now: $0) } }
    }

    mutating func reverted(_ host: String, _ phase: DeploymentPhase = .succeeded) {
        send { .revertFinished(host: host, end: .ended(phase: phase, deploymentID: "revert-\(host)", error: nil), now: $0) }
    }

    var deployed: [String] {
        actions.compactMap { if case .deploy(let host, _) = $0 { host } else { nil } }
    }

    var lastDeployed: [String] {
        last.compactMap { if case .deploy(let host, _) = $0 { host } else { nil } }
    }

    var events: [RolloutEvent] {
        actions.compactMap { if case .emit(let event) = $0 { event } else { nil } }
    }

    var messages: [String] { events.map(\.message) }

    var revertPlan: RolloutStateMachine.RevertPlan? {
        actions.lazy.compactMap { if case .revert(let plan) = $0 { plan } else { nil } }.first
    }

    var summary: RolloutSummary? {
        actions.lazy.compactMap { if case .finish(let summary) = $0 { summary } else { nil } }.first
    }

    func phase(_ host: String) -> HostPhase? { machine.result(host)?.phase }
}
