@testable import BatonController
import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

/// What a drill checks before it changes anything, and how it names its ending, without
/// agents (the end-to-end cases are DrillTests, on real ones).
@Suite("drill rules")
struct DrillPlanTests {
    static func drill(hosts: Int, in directory: TemporaryDirectory) throws -> Drill {
        let hosts = RolloutFixture.hostIDs(hosts).map { Fleet.Host(id: $0, address: "127.0.0.1:1", environment: "staging") }
        return Drill(
            app: "web", environment: "staging", hosts: hosts, key: SigningKey(), policy: nil,
            history: try SQLiteHistoryStore(path: directory.child("history.sqlite")), state: ControllerState(root: directory.child("state")),
            makeClient: { _, _ throws(ControllerError) in throw ControllerError(.credentialsMissing, "no agents here") },
            legProgress: { _ in LineRenderer(write: { _ in }) }, say: { _ in })
    }

    static let v1 = RolloutFixture.held("v1", serial: 5, digest: "digest-v1")
    static let v2 = RolloutFixture.held("v2", serial: 6, digest: "digest-v2")

    @Test("a host is drilled only when it answers, is idle, and holds both the previous and its current release's approved manifests")
    func refusals() throws {
        let directory = try TemporaryDirectory(prefix: "baton-drill")
        defer { directory.remove() }
        let drill = try Self.drill(hosts: 1, in: directory)
        let good = RolloutFixture.status(current: "v2", previous: "v1", lastSerial: 6, held: [Self.v2, Self.v1])
        #expect(try drill.planned(statuses: ["host-1": good], unreachable: []) == [DrillRecord.Host(host: "host-1", original: "v2", previous: "v1")])

        var busy = good
        busy.activeDeploymentID = "d-7"
        var corrupt = good
        corrupt.stateError = ErrorInfo(code: "state_corrupt", message: "web.json is empty")
        let silent = [(host: "host-1", error: ErrorInfo(code: "agent_unreachable", message: "refused"))]
        #expect(Self.refusal(drill, good, unreachable: silent) == .hostUnreachable)
        #expect(Self.refusal(drill, busy) == .hostBusy)
        #expect(Self.refusal(drill, corrupt) == .stateCorrupt)
        #expect(Self.refusal(drill, nil) == .appUnknown)
        #expect(Self.refusal(drill, RolloutFixture.status(current: "v1", previous: nil)) == .noPreviousRelease)
        #expect(Self.refusal(drill, RolloutFixture.status(current: "v2", previous: "v1", held: [Self.v2])) == .previousReleaseGone)
        #expect(Self.refusal(drill, RolloutFixture.status(current: "v2", previous: "v1", held: [Self.v1])) == .currentNotHeld)
        #expect(Self.refusal(drill, good) == nil)
    }

    /// The code `planned` refuses host-1 with; nil when it is drilled.
    static func refusal(_ drill: Drill, _ status: AppStatus?, unreachable: [(host: String, error: ErrorInfo)] = []) -> DrillError.Code? {
        do {
            _ = try drill.planned(statuses: status.map { ["host-1": $0] } ?? [:], unreachable: unreachable)
            return nil
        } catch {
            return error.code
        }
    }

    @Test("the ending: back and forward healthy is success; a way back that failed is a failure with the reason; a host away is named with the command that puts it back")
    func endings() throws {
        let directory = try TemporaryDirectory(prefix: "baton-drill")
        defer { directory.remove() }
        let drill = try Self.drill(hosts: 2, in: directory)
        func record(_ change: (inout [DrillRecord.Host]) -> Void) -> DrillRecord {
            var hosts = ["host-1", "host-2"].map { DrillRecord.Host(host: $0, original: "v2", previous: "v1") }
            for index in hosts.indices { hosts[index].back = .succeeded; hosts[index].forward = .succeeded }
            hosts[0].timeToRecover = 1.5
            hosts[1].timeToRecover = 2.5
            change(&hosts)
            return DrillRecord(id: "drill-x", app: "web", environment: "staging", actor: "a@b", startedAt: RolloutFixture.t0, hosts: hosts)
        }
        let onV2 = ["host-1": RolloutFixture.status(current: "v2"), "host-2": RolloutFixture.status(current: "v2")]

        var succeeded = record { _ in }
        drill.finish(&succeeded, final: (onV2, []), signal: nil)
        #expect(succeeded.outcome == .succeeded && succeeded.timeToRecover == 2.5 && succeeded.reason == nil)
        #expect(succeeded.hosts.map(\.final) == ["v2", "v2"] && succeeded.attention.isEmpty)
        #expect(Drill.exitStatus(succeeded, signal: nil) == 0)

        var failed = record { hosts in
            hosts[1].back = .rolledBack
            hosts[1].forward = nil
            hosts[1].timeToRecover = nil
            hosts[1].error = ErrorInfo(code: "health_check_failed", message: "503")
        }
        drill.finish(&failed, final: (onV2, []), signal: nil)
        #expect(failed.outcome == .failed && failed.timeToRecover == 1.5)
        #expect(failed.reason == "host-2: the way back to v1 ended rolled_back: health_check_failed: 503; every host is back on the release it was on")
        #expect(Drill.exitStatus(failed, signal: nil) == 1)

        var interrupted = record { _ in }
        drill.finish(&interrupted, final: (onV2, []), signal: SIGTERM)
        #expect(interrupted.outcome == .interrupted && Drill.exitStatus(interrupted, signal: SIGTERM) == 143)

        var away = record { _ in }
        drill.finish(&away, final: (["host-1": RolloutFixture.status(current: "v1")], [("host-2", ErrorInfo(code: "agent_unreachable", message: "gone"))]), signal: SIGINT)
        #expect(away.outcome == .needsAttention && away.attention.map(\.host) == ["host-1", "host-2"])
        #expect(away.reason?.contains("host-1 is on v1, not on v2 as before the drill; put it back with `baton rollback web --environment staging --to v2 --hosts host-1`") == true, "\(away.reason ?? "")")
        #expect(away.reason?.contains("host-2 did not answer after the drill") == true)
        #expect(away.hosts[1].error?.code == "agent_unreachable")
        #expect(Drill.exitStatus(away, signal: SIGINT) == 3)
    }
}
