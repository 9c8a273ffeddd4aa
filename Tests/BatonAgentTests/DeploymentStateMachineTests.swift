@testable import BatonAgent
import BatonProtocol
import Testing

@Suite struct DeploymentStateMachineTests {
    let boom = ErrorInfo(code: "x", message: "boom")

    @Test func theHappyPathVisitsEveryPhaseInOrder() {
        var machine = DeploymentStateMachine(hasBake: true)
        var steps = [machine.start()]
        var phases = [machine.phase]
        while true {
            let step = machine.advance(.succeeded)
            steps.append(step)
            phases.append(machine.phase)
            if step == .complete || step == .done { break }
        }
        #expect(steps == [.fetch, .unpack, .prepare, .switchOver, .activate, .check, .bake, .complete])
        #expect(phases == [.fetching, .unpacking, .preparing, .switching, .activating, .checking, .baking, .succeeded])
    }

    @Test func withoutBakeCheckingLeadsToSuccess() {
        var machine = DeploymentStateMachine(phase: .checking, hasBake: false)
        #expect(machine.advance(.succeeded) == .complete)
        #expect(machine.phase == .succeeded)
    }

    @Test(arguments: [DeploymentPhase.fetching, .unpacking, .preparing])
    func failuresBeforeTheSwitchFail(phase: DeploymentPhase) {
        var machine = DeploymentStateMachine(phase: phase, hasBake: true)
        #expect(machine.advance(.failed(boom)) == .fail(boom))
        #expect(machine.phase == .failed)
    }

    @Test(arguments: [DeploymentPhase.switching, .activating, .checking, .baking])
    func failuresFromTheSwitchOnRollBack(phase: DeploymentPhase) {
        var machine = DeploymentStateMachine(phase: phase, hasBake: true)
        #expect(machine.advance(.failed(boom)) == .rollBack(boom))
        var ok = machine
        #expect(ok.advance(.succeeded) == .done)
        #expect(ok.phase == .rolledBack)
        #expect(machine.advance(.failed(boom)) == .done)
        #expect(machine.phase == .rollbackFailed)
    }

    @Test(arguments: DeploymentPhase.allCases)
    func reconciliationAtStart(phase: DeploymentPhase) {
        let (machine, step) = DeploymentStateMachine.reconcile(phase, error: boom)
        if phase.isTerminal {
            #expect(step == .done)
        } else if phase.isAfterSwitch {
            #expect(step == .rollBack(boom))
            #expect(machine.rollingBack)
        } else {
            #expect(step == .fail(boom))
            #expect(machine.phase == .failed)
        }
    }
}
