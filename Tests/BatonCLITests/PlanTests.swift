import BatonTestSupport
import Foundation
import Testing

@Suite("baton plan", .serialized)
struct PlanTests {
    /// Every file, directory and link under the agents' data directories, with content.
    static func snapshot(_ fleet: LocalFleet) throws -> [String: String] {
        var result: [String: String] = [:]
        let root = fleet.dir.child("hosts")
        guard let walker = FileManager.default.enumerator(atPath: root) else { return result }
        for case let relative as String in walker where relative.contains("/data/") {
            let path = "\(root)/\(relative)"
            var info = stat()
            guard lstat(path, &info) == 0 else { continue }
            switch info.st_mode & S_IFMT {
            case S_IFLNK: result[relative] = "link " + ((try? FileManager.default.destinationOfSymbolicLink(atPath: path)) ?? "")
            case S_IFREG:
                let data = try Data(contentsOf: URL(fileURLWithPath: path))
                result[relative] = "file \(data.count) \(data.hashValue) \(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
            default: result[relative] = "dir \(info.st_mode)"
            }
        }
        return result
    }

    @Test("plan shows current → target, waves, uploads and foreseeable refusals, and changes nothing anywhere")
    func planChangesNothing() async throws {
        let fleet = try await RolloutTests.fleetOnV1()
        defer { fleet.shutdown() }
        let v2 = try await RolloutTests.signedRelease(fleet, "v2")
        // A manifest reusing serial 1 with another release: every agent would refuse it.
        var conflicting = try #require(try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: fleet.dir.child("state/releases/web/v1.manifest.json")))) as? [String: Any])
        conflicting["release"] = "v1b"
        try JSONSerialization.data(withJSONObject: conflicting).write(to: URL(fileURLWithPath: fleet.dir.child("v1b.json")))
        #expect(try await fleet.run(["manifest", "sign", "v1b.json", "--key", "keys/ci.key"]).status == 0)
        await fleet.kill("host-5")
        let before = try Self.snapshot(fleet)
        #expect(before.count > 20, "the snapshot covers the agents' data")
        let historyBefore = try await fleet.run(["history", "--json"]).stdout

        let plan = try await fleet.run(["plan", v2, "--canary", "1", "--batch", "2", "--json"])
        #expect(plan.status == 1, "an unreachable host makes the plan exit 1")
        let rows = try plan.stdout.split(separator: "\n").map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        #expect(rows.map { $0["host"] as? String } == fleet.hostIDs)
        for row in rows.prefix(4) {
            #expect(row["current"] as? String == "v1")
            #expect(row["target"] as? String == "v2")
            #expect(row["action"] as? String == "deploy")
            #expect(row["upload"] as? Bool == true)
        }
        #expect(rows.prefix(4).map { $0["wave"] as? String } == ["canary", "batch 1", "batch 1", "batch 2"])
        #expect(rows[4]["action"] as? String == "unreachable")

        let refused = try await fleet.run(["rollout", "v1b.envelope.json", "--dry-run", "--hosts", "host-1,host-2"])
        #expect(refused.status == 1)
        #expect(refused.stdout.contains("refused: serial_conflict"), "\(refused.stdout)")
        let again = try await fleet.run(["plan", "v1-envelope-missing.json"])
        #expect(again.status == 2)

        #expect(try Self.snapshot(fleet) == before, "plan changed something on an agent")
        #expect(try await fleet.run(["history", "--json"]).stdout == historyBefore)
    }
}
