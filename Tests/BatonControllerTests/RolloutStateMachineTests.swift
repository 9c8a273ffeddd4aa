@testable import BatonController
import BatonProtocol
import Foundation
import Testing

/// Every rule of a rollout, decided by the state machine alone: no agents, no sleeping.
@Suite("Rollout state machine")
struct RolloutStateMachineTests {
    typealias Fixture = RolloutFixture

    @Test("the canary deploys alone; its failure halts whatever the threshold; the rest is skipped")
    func canaryFailureHalts() throws {
        let hosts = Fixture.hostIDs(3)
        var drive = RolloutMachineDriver(Fixture.request(hosts: 3) {
            $0.canary = 1
            $0.failureThreshold = .hosts(5)
        })
        drive.start(hosts)
        #expect(drive.deployed == ["host-1"])
        drive.finish("host-1", .failed)
        #expect(drive.messages.contains("halted: the canary failed"))
        #expect(drive.deployed == ["host-1"])
        #expect(drive.messages.contains("nothing to revert: no host was switched to v2"))
        let summary = try #require(drive.summary)
        #expect(summary.outcome == .failed)
        #expect(summary.halted && summary.haltReason == "the canary failed")
        #expect(summary.skipped == ["host-2", "host-3"])
    }

    @Test("past the failure threshold (a count or a percentage) the rollout halts; unreachable hosts count as failures",
          arguments: [HostCount.hosts(1), .percent(25)])
    func failureThreshold(threshold: HostCount) throws {
        let hosts = Fixture.hostIDs(4)
        var drive = RolloutMachineDriver(Fixture.request(hosts: 4) {
            $0.parallel = 1
            $0.failureThreshold = threshold
        })
        drive.start(hosts)
        drive.finish("host-1")
        drive.finish("host-2", .failed)
        #expect(!drive.messages.contains { $0.hasPrefix("halted") }, "one failure is within the threshold")
        #expect(drive.lastDeployed == ["host-3"])
        drive.finish("host-3", .unreachable)
        #expect(drive.messages.contains("halted: 2 failed host(s) exceed the failure threshold of \(threshold) in batch 1"))
        #expect(drive.deployed == ["host-1", "host-2", "host-3"])
        // The switched host goes back.
        #expect(drive.revertPlan?.hosts == ["host-1"])
        drive.reverted("host-1")
        let summary = try #require(drive.summary)
        #expect(summary.reverted == ["host-1"])
        #expect(summary.skipped == ["host-4"])
        #expect(summary.outcome == .needsAttention, "an unreachable host needs a person")
    }

    @Test("max-unavailable bounds the hosts deploying; failures use it up, and a rollout that cannot start a host halts")
    func maxUnavailable() throws {
        let hosts = Fixture.hostIDs(4)
        var drive = RolloutMachineDriver(Fixture.request(hosts: 4) {
            $0.maxUnavailable = .hosts(2)
            $0.failureThreshold = .hosts(3)
        })
        drive.start(hosts)
        #expect(drive.deployed == ["host-1", "host-2"], "two at a time")
        drive.finish("host-1", .failed)
        #expect(drive.lastDeployed.isEmpty, "host-1 failed: one out of service plus host-2 deploying is the bound")
        drive.finish("host-2", .failed)
        #expect(drive.lastDeployed.isEmpty)
        #expect(drive.messages.contains("halted: 2 host(s) out of service reached --max-unavailable 2"))
        #expect(drive.deployed == ["host-1", "host-2"])
        let summary = try #require(drive.summary)
        #expect(summary.skipped == ["host-3", "host-4"])
        #expect(summary.outcome == .failed)
    }

    @Test("pause after a healthy canary: nothing else deployed, outcome paused")
    func pauseAfterCanary() throws {
        let hosts = Fixture.hostIDs(3)
        var drive = RolloutMachineDriver(Fixture.request(hosts: 3) {
            $0.canary = 1
            $0.pauseAfterCanary = true
        })
        drive.start(hosts)
        drive.finish("host-1")
        #expect(drive.deployed == ["host-1"])
        #expect(drive.events.contains { $0.type == .paused })
        #expect(drive.revertPlan == nil)
        let summary = try #require(drive.summary)
        #expect(summary.outcome == .paused)
        #expect(!summary.halted)
        #expect(summary.succeeded == ["host-1"] && summary.skipped == ["host-2", "host-3"])
    }

    @Test("--pause between batches: wait until the end of the pause, then check the lock and go on")
    func pauseBetweenBatches() throws {
        let hosts = Fixture.hostIDs(2)
        var drive = RolloutMachineDriver(Fixture.request(hosts: 2) {
            $0.batch = .hosts(1)
            $0.pause = .minutes(10)
        })
        drive.start(hosts)
        drive.advance(30)
        drive.finish("host-1")
        #expect(drive.last.contains(.waitUntil(drive.now.addingTimeInterval(600))))
        #expect(drive.messages.contains("pausing 10m before the next batch"))
        #expect(drive.deployed == ["host-1"])
        drive.advance(600)
        let afterPause = drive.send { .pauseElapsed(now: $0) }
        #expect(afterPause == [.checkLock])
        drive.send { .lockChecked(holds: true, now: $0) }
        #expect(drive.lastDeployed == ["host-2"])
        drive.finish("host-2")
        #expect(!drive.last.contains { if case .waitUntil = $0 { true } else { false } }, "no pause after the last batch")
        #expect(try #require(drive.summary).outcome == .succeeded)
    }

    @Test("an interrupt during a pause acts at once: the wait is dropped and the switched hosts revert")
    func interruptDuringPause() throws {
        let hosts = Fixture.hostIDs(2)
        var drive = RolloutMachineDriver(Fixture.request(hosts: 2) {
            $0.batch = .hosts(1)
            $0.pause = .minutes(10)
        })
        drive.start(hosts)
        drive.finish("host-1")
        drive.advance(5)
        let actions = drive.send { .interrupt(reason: "interrupted by the operator (SIGINT)", now: $0) }
        #expect(actions.contains(.cancelWait))
        #expect(actions.last == .checkLock)
        drive.send { .lockChecked(holds: true, now: $0) }
        #expect(drive.revertPlan?.hosts == ["host-1"])
        let late = drive.send { .pauseElapsed(now: $0) }
        #expect(late.isEmpty, "a late end of the pause changes nothing")
        drive.reverted("host-1")
        let summary = try #require(drive.summary)
        #expect(summary.haltReason == "interrupted by the operator (SIGINT)")
        #expect(summary.reverted == ["host-1"] && summary.skipped == ["host-2"])
        #expect(summary.outcome == .failed)
        #expect(drive.deployed == ["host-1"])
    }

    @Test("a lock lost during a pause: nothing reverted, nothing deployed, outcome abandoned")
    func lostLockDuringPause() throws {
        let hosts = Fixture.hostIDs(2)
        var drive = RolloutMachineDriver(Fixture.request(hosts: 2) {
            $0.batch = .hosts(1)
            $0.pause = .minutes(10)
        })
        drive.start(hosts)
        drive.finish("host-1")
        let actions = drive.send { .lockLost(reason: "the rollout lock was broken or taken over", now: $0) }
        #expect(actions.contains(.cancelWait))
        #expect(!actions.contains(.checkLock), "the lock is known to be lost")
        #expect(drive.revertPlan == nil)
        #expect(drive.messages.contains("not reverting: the rollout lock is no longer this controller's, so its new holder decides"))
        let summary = try #require(drive.summary)
        #expect(summary.outcome == .abandoned)
        #expect(summary.succeeded == ["host-1"])
        #expect(drive.deployed == ["host-1"])
    }

    @Test("a lock found lost before a wave: the wave does not start, outcome abandoned")
    func lockLostBeforeWave() throws {
        let hosts = Fixture.hostIDs(2)
        var drive = RolloutMachineDriver(Fixture.request(hosts: 2) { $0.batch = .hosts(1) })
        drive.start(hosts)
        drive.finish("host-1", holds: false)
        #expect(drive.deployed == ["host-1"])
        #expect(drive.revertPlan == nil)
        #expect(try #require(drive.summary).outcome == .abandoned)
    }

    @Test("the revert: one manifest per approved manifest, a serial past every host's; hosts with no held previous release need attention")
    func revertGrouping() throws {
        let hosts = Fixture.hostIDs(5)
        var drive = RolloutMachineDriver(Fixture.request(hosts: 5) { $0.batch = .hosts(4) })
        let v0 = Fixture.held("v0", serial: 3, digest: "digest-v0")
        drive.start(hosts, statuses: [
            "host-3": Fixture.status(current: "v0", lastSerial: 12, held: [v0]),
            "host-4": Fixture.status(held: []),
            "host-5": Fixture.status(current: nil, held: []),
        ])
        for host in hosts.prefix(4) { drive.finish(host) }
        drive.finish("host-5", .failed)
        let plan = try #require(drive.revertPlan)
        #expect(plan.serial == 13, "past host-3's last serial 12")
        #expect(plan.groups.map(\.approvedPayloadDigest) == ["digest-v1", "digest-v0"])
        #expect(plan.groups.map(\.hosts) == [["host-1", "host-2"], ["host-3"]])
        let group = plan.groups[0]
        #expect(group.manifest.release == "v1" && group.manifest.serial == 13)
        #expect(group.manifest.returnDifferences(from: Fixture.manifest("v1", serial: 5)).isEmpty)
        #expect(group.manifest.expiresAt == drive.now.addingTimeInterval(ReturnTarget.validity.seconds))
        #expect(group.manifest.notes?.contains("revert of v2 by rollout 20261206-000000-web-abcdef") == true)
        #expect(drive.machine.result("host-4")?.error?.code == "previous_release_gone")
        #expect(drive.machine.result("host-4")?.needsAttention == true)
        for host in ["host-1", "host-2", "host-3"] { drive.reverted(host) }
        let summary = try #require(drive.summary)
        #expect(summary.revertSerial == 13)
        #expect(summary.reverted == ["host-1", "host-2", "host-3"])
        #expect(summary.attention == ["host-4"])
        #expect(summary.outcome == .needsAttention)
    }

    @Test("a revert that fails needs a person")
    func revertFailure() throws {
        let hosts = Fixture.hostIDs(2)
        var drive = RolloutMachineDriver(Fixture.request(hosts: 2) { $0.parallel = 1 })
        drive.start(hosts)
        drive.finish("host-1")
        drive.finish("host-2", .failed)
        drive.reverted("host-1", .rolledBack)
        let summary = try #require(drive.summary)
        #expect(summary.hosts[0].phase == .revertFailed && summary.hosts[0].needsAttention)
        #expect(summary.outcome == .needsAttention)
    }

    @Test("no signing key: the switched hosts cannot revert and need attention")
    func revertWithoutKey() throws {
        let hosts = Fixture.hostIDs(2)
        var drive = RolloutMachineDriver(Fixture.request(hosts: 2, key: nil) { $0.parallel = 1 })
        drive.start(hosts)
        drive.finish("host-1")
        drive.finish("host-2", .failed)
        #expect(drive.revertPlan == nil)
        let summary = try #require(drive.summary)
        #expect(summary.hosts[0].error?.code == "revert_unsigned")
        #expect(summary.outcome == .needsAttention)
    }

    @Test("a resumed rollout: hosts already on the release count as succeeded and are not deployed again; their way back is the recorded previous release")
    func resume() throws {
        let hosts = Fixture.hostIDs(3)
        var request = Fixture.request(hosts: 3) { $0.batch = .hosts(2) }
        request.knownPrevious = ["host-1": "v1"]
        var drive = RolloutMachineDriver(request)
        drive.start(hosts, statuses: ["host-1": Fixture.status(current: "v2", previous: "v0", lastSerial: 10)])
        #expect(drive.machine.result("host-1")?.previousRelease == "v1", "knownPrevious, not the agent's previous")
        #expect(drive.machine.result("host-2")?.previousRelease == "v1")
        #expect(drive.phase("host-1") == .succeeded)
        #expect(drive.deployed == ["host-2"])
        drive.finish("host-2")
        drive.finish("host-3")
        #expect(drive.deployed == ["host-2", "host-3"])
        let summary = try #require(drive.summary)
        #expect(summary.outcome == .succeeded)
        #expect(summary.hosts[0].deploymentID == "d-v2")
    }

    @Test("a host on the release from another manifest (or mid-deployment) is deployed again")
    func onReleaseButNotThisManifest() {
        let hosts = Fixture.hostIDs(2)
        var drive = RolloutMachineDriver(Fixture.request(hosts: 2))
        var active = Fixture.status(current: "v2", lastSerial: 10)
        active.activeDeploymentID = "d-running"
        drive.start(hosts, statuses: ["host-1": Fixture.status(current: "v2", lastSerial: 9), "host-2": active])
        #expect(drive.deployed == ["host-1", "host-2"])
    }

    @Test("abort: every host on the release goes back at once; nothing deployed; outcome aborted")
    func abort() throws {
        let hosts = Fixture.hostIDs(3)
        var request = Fixture.request(hosts: 3) { $0.canary = 1 }
        request.knownPrevious = ["host-1": "v1", "host-3": "v1"]
        var drive = RolloutMachineDriver(request)
        drive.send { .abort(reason: "aborted by the operator", now: $0) }
        let onV2 = Fixture.status(current: "v2", previous: "v1", lastSerial: 10)
        drive.answerQuery(hosts, statuses: ["host-1": onV2, "host-3": onV2], status: Fixture.status())
        #expect(drive.messages.contains("halted: aborted by the operator"))
        #expect(drive.last.last == .checkLock)
        drive.send { .lockChecked(holds: true, now: $0) }
        #expect(drive.revertPlan?.hosts == ["host-1", "host-3"])
        drive.reverted("host-1")
        drive.reverted("host-3")
        #expect(drive.deployed.isEmpty)
        let summary = try #require(drive.summary)
        #expect(summary.outcome == .aborted && summary.halted)
        #expect(summary.reverted == ["host-1", "host-3"] && summary.skipped == ["host-2"])
        #expect(drive.messages.last == "abort aborted: 2 reverted, 0 failed")
    }

    @Test("--no-auto-revert: a halt leaves the switched hosts on the release")
    func noAutoRevert() throws {
        let hosts = Fixture.hostIDs(2)
        var drive = RolloutMachineDriver(Fixture.request(hosts: 2) {
            $0.parallel = 1
            $0.autoRevert = false
        })
        drive.start(hosts)
        drive.finish("host-1")
        drive.finish("host-2", .failed)
        #expect(drive.revertPlan == nil)
        #expect(drive.messages.contains("not reverting (--no-auto-revert): switched hosts stay on v2"))
        let summary = try #require(drive.summary)
        #expect(summary.succeeded == ["host-1"])
        #expect(summary.outcome == .failed)
    }

    @Test("hosts unreachable before anything is deployed, over the threshold: halt with nothing deployed")
    func unreachableBeforeDeploy() throws {
        let hosts = Fixture.hostIDs(3)
        var drive = RolloutMachineDriver(Fixture.request(hosts: 3))
        drive.start(hosts, statuses: ["host-2": AppStatus?.none])
        #expect(drive.messages.contains("halted: 1 host(s) unreachable before anything was deployed, over the failure threshold of 0"))
        #expect(drive.deployed.isEmpty)
        let summary = try #require(drive.summary)
        #expect(summary.unreachable == ["host-2"])
        #expect(summary.skipped == ["host-1", "host-3"])
        #expect(summary.outcome == .needsAttention)
    }

    @Test("within the threshold, an unreachable host is left out and the others deploy")
    func unreachableWithinThreshold() {
        let hosts = Fixture.hostIDs(3)
        var drive = RolloutMachineDriver(Fixture.request(hosts: 3) { $0.failureThreshold = .hosts(1) })
        drive.start(hosts, statuses: ["host-2": AppStatus?.none])
        #expect(drive.deployed == ["host-1", "host-3"])
    }

    @Test("an interrupt mid-wave starts no new host; those deploying finish, then the switched ones revert")
    func interruptMidWave() throws {
        let hosts = Fixture.hostIDs(3)
        var drive = RolloutMachineDriver(Fixture.request(hosts: 3) { $0.parallel = 1 })
        drive.start(hosts)
        let halting = drive.send { .interrupt(reason: "stop", now: $0) }
        #expect(halting.allSatisfy { if case .emit = $0 { true } else { false } }, "only the halted event")
        drive.finish("host-1")
        #expect(drive.deployed == ["host-1"])
        #expect(drive.revertPlan?.hosts == ["host-1"])
    }

    @Test("a canary is judged by its own hosts: a host unreachable within the threshold does not fail it")
    func canaryJudgedByItsHosts() throws {
        let hosts = Fixture.hostIDs(3)
        var drive = RolloutMachineDriver(Fixture.request(hosts: 3) {
            $0.canary = 1
            $0.failureThreshold = .hosts(1)
        })
        drive.start(hosts, statuses: ["host-3": AppStatus?.none])
        drive.finish("host-1")
        #expect(!drive.messages.contains("halted: the canary failed"))
        #expect(drive.deployed == ["host-1", "host-2"])
    }

    @Test("a halt while the lock is checked before a wave: the wave does not start")
    func haltWhileCheckingLock() throws {
        let hosts = Fixture.hostIDs(2)
        var drive = RolloutMachineDriver(Fixture.request(hosts: 2))
        drive.send { .start(now: $0) }
        drive.answerQuery(hosts, statuses: [:], status: Fixture.status())
        #expect(drive.last.last == .checkLock)
        drive.send { .interrupt(reason: "stop", now: $0) }
        drive.send { .lockChecked(holds: true, now: $0) }
        #expect(drive.deployed.isEmpty)
        #expect(drive.last.last == .checkLock, "the lock is checked again before the revert")
        drive.send { .lockChecked(holds: true, now: $0) }
        let summary = try #require(drive.summary)
        #expect(summary.skipped == hosts)
        #expect(summary.outcome == .failed)
    }

    @Test("the artifact is uploaded only to hosts that do not hold it, and only when the controller has its bytes")
    func uploads() {
        var request = Fixture.request(hosts: 2)
        request.artifactFile = "/tmp/web-v2.tar.gz"
        var holding = Fixture.status()
        holding.releaseArtifacts = ["v2": Fixture.v2.artifact]
        var drive = RolloutMachineDriver(request)
        drive.start(Fixture.hostIDs(2), statuses: ["host-2": holding])
        #expect(drive.actions.contains(.deploy(host: "host-1", upload: true)))
        #expect(drive.actions.contains(.deploy(host: "host-2", upload: false)))
        var noFile = RolloutMachineDriver(Fixture.request(hosts: 1))
        noFile.start(["host-1"])
        #expect(noFile.actions.contains(.deploy(host: "host-1", upload: false)))
    }

    @Test("time comes with the events: the summary and every event carry the clock they were given")
    func injectedClock() throws {
        var drive = RolloutMachineDriver(Fixture.request(hosts: 1))
        drive.start(["host-1"])
        drive.advance(42)
        drive.finish("host-1")
        let summary = try #require(drive.summary)
        #expect(summary.startedAt == Fixture.t0)
        #expect(summary.finishedAt == Fixture.t0.addingTimeInterval(42))
        #expect(drive.events.last?.time == Fixture.t0.addingTimeInterval(42))
        #expect(summary.hosts[0].startedAt == Fixture.t0)
    }
}
