import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

/// `baton audit` keeps every host's signed audit head and shows when a host's evidence
/// was cut short, rewritten or deleted while its agent was stopped: changes the host
/// alone cannot show, because whoever rewrote the log also rewrote its head.
@Suite("baton audit")
struct AuditCommandTests {
    static func audit(_ fleet: LocalFleet, _ extra: [String] = []) async throws -> (status: Int32, rows: [String: [String: Any]], output: String) {
        let result = try await fleet.run(["audit", "--environment", "staging", "--json"] + extra)
        var rows: [String: [String: Any]] = [:]
        for line in result.stdout.split(separator: "\n") {
            guard let row = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], let host = row["host"] as? String
            else { continue }
            rows[host] = row
        }
        return (result.status, rows, result.stdout + result.stderr)
    }

    static func log(_ fleet: LocalFleet, _ host: String) -> String { fleet.root + "/hosts/\(host)/data/state/audit.log" }
    static func head(_ fleet: LocalFleet, _ host: String) -> String { fleet.root + "/hosts/\(host)/data/state/audit.head" }

    /// Writes `lines` (JSON objects) as a fresh, self-consistent chain with its head: what
    /// someone who holds the host can do to hide what the log said.
    static func rewriteChain(_ fleet: LocalFleet, _ host: String, _ lines: [[String: Any]]) throws {
        var prev = String(repeating: "0", count: 64)
        var text = ""
        for var object in lines {
            object["prev"] = prev
            let line = String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
            text += line + "\n"
            prev = Digest.sha256Hex(Array(line.utf8))
        }
        try text.write(toFile: log(fleet, host), atomically: false, encoding: .utf8)
        try "\(lines.count) \(prev)\n".write(toFile: head(fleet, host), atomically: false, encoding: .utf8)
    }

    static func entries(_ fleet: LocalFleet, _ host: String) throws -> [[String: Any]] {
        try String(contentsOfFile: log(fleet, host), encoding: .utf8).split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    @Test("heads are recorded; a log cut short, rewritten or deleted while the agent was stopped is reported; --accept takes the new baseline")
    func rewrittenEvidenceIsReported() async throws {
        let fleet = try await RolloutTests.fleetOnV1(hosts: 3)
        defer { fleet.shutdown() }

        let first = try await Self.audit(fleet)
        #expect(first.status == 0, "\(first.output)")
        #expect(fleet.hostIDs.allSatisfy { first.rows[$0]?["verdict"] as? String == "first" }, "\(first.output)")

        let v2 = try fleet.artifact("v2")
        let deployed = try await fleet.run(
            ["deploy", "web", "--artifact", v2, "--release", "v2", "--environment", "staging", "--key", "keys/ci.key", "--plain"])
        #expect(deployed.status == 0, "\(deployed.stdout)\(deployed.stderr)")
        let grown = try await Self.audit(fleet)
        #expect(grown.status == 0, "\(grown.output)")
        #expect(fleet.hostIDs.allSatisfy { grown.rows[$0]?["verdict"] as? String == "consistent" }, "\(grown.output)")

        // host-1: the v2 lines are cut off, the head rewritten to match.
        // host-2: the first line's record is rewritten and the whole chain recomputed.
        // host-3: the log and its head are deleted.
        for host in fleet.hostIDs { await fleet.kill(host) }
        let kept = try Self.entries(fleet, "host-1")
        try Self.rewriteChain(fleet, "host-1", Array(kept.prefix(2)))
        var forged = try Self.entries(fleet, "host-2")
        forged[0]["signers"] = ["someone-else"]
        try Self.rewriteChain(fleet, "host-2", forged)
        try FileManager.default.removeItem(atPath: Self.log(fleet, "host-3"))
        try FileManager.default.removeItem(atPath: Self.head(fleet, "host-3"))
        for host in fleet.hostIDs { try await fleet.restart(host) }

        let after = try await Self.audit(fleet)
        #expect(after.status == 1, "\(after.output)")
        #expect(after.rows["host-1"]?["verdict"] as? String == "went_backwards", "\(after.output)")
        #expect(after.rows["host-2"]?["verdict"] as? String == "forked", "\(after.output)")
        // The agent itself found the deletion (deployment records without a log) and
        // recorded it as the first line of a new chain: shorter than the one recorded.
        #expect(after.rows["host-3"]?["verdict"] as? String == "went_backwards", "\(after.output)")
        #expect(try Self.entries(fleet, "host-3").first?["event"] as? String == "chain_broken")

        // Still reported until someone accepts the new heads as the baseline.
        #expect(try await Self.audit(fleet).status == 1)
        let accepted = try await Self.audit(fleet, ["--accept"])
        #expect(accepted.rows["host-1"]?["verdict"] as? String == "accepted", "\(accepted.output)")
        #expect(accepted.rows["host-2"]?["verdict"] as? String == "accepted", "\(accepted.output)")
        let settled = try await Self.audit(fleet)
        #expect(settled.rows["host-1"]?["verdict"] as? String == "consistent", "\(settled.output)")
        #expect(settled.rows["host-2"]?["verdict"] as? String == "consistent", "\(settled.output)")
        // host-3's agent still reports its chain broken: the recorded break stays.
        #expect(settled.rows["host-3"]?["verdict"] as? String == "chain_broken", "\(settled.output)")
        #expect(settled.status == 1)
        // On the host too: `batond status` names the break and exits 3.
        let local = try await fleet.batond("host-3", ["status"])
        #expect(local.status == 3, "\(local.stdout)\(local.stderr)")
        #expect(local.stderr.contains("audit_broken"), "\(local.stderr)")
    }
}
