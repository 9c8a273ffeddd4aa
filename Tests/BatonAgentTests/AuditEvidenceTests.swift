import BatonProtocol
import Crypto
import Foundation
import Testing

@testable import BatonAgent

/// The audit log is evidence: a break is found, recorded in the chain itself and
/// reported as degraded rather than carried on silently; refusals cannot grow it without
/// bound; and its head is signed with the agent's own key for a controller to keep.
@Suite struct AuditEvidenceTests {
    static func lines(_ fixture: AgentFixture) throws -> [AuditEntry] {
        let text = (try? String(contentsOfFile: fixture.layout.auditLog, encoding: .utf8)) ?? ""
        return try text.split(separator: "\n").map { try BatonJSON.decode(AuditEntry.self, from: Data($0.utf8)) }
    }

    /// 250 malformed envelopes from one peer add one `refused` line, and when the agent
    /// stops one `refusals` line counts the other 249; the chain stays intact.
    @Test func refusalsAreCoalescedPerCodeAndPeer() async throws {
        let fixture = try AgentFixture()
        defer { fixture.remove() }
        let engine = try fixture.engine()
        for _ in 0..<250 {
            _ = try? await engine.submit(envelope: Array("{not json".utf8), peer: "ci")
        }
        _ = try? await engine.submit(envelope: Array("{not json".utf8), peer: "other")
        #expect(try Self.lines(fixture).map(\.event) == ["refused", "refused"])
        await engine.flushAudit()
        let entries = try Self.lines(fixture)
        #expect(entries.map(\.event) == ["refused", "refused", "refusals"])
        #expect(entries.last?.count == 249)
        #expect(entries.last?.peer == "ci")
        #expect(entries.last?.result == "malformed")
        #expect(AuditVerifier.verify(dataDirectory: fixture.dataDirectory) == .intact(lines: 3))
    }

    /// The log is truncated and its head rewritten to match while the agent runs: the next
    /// append finds the file is not what the agent left, records the break first, and
    /// health turns degraded.
    @Test func truncationWhileRunningIsRecordedInTheChain() async throws {
        let fixture = try AgentFixture()
        defer { fixture.remove() }
        let engine = try fixture.engine()
        let v1 = try fixture.artifact("v1")
        _ = try await engine.deploy(try fixture.envelope("v1", artifact: v1), artifact: v1.path)
        #expect(engine.auditStatus.intact)
        let kept = try #require(try String(contentsOfFile: fixture.layout.auditLog, encoding: .utf8).split(separator: "\n").first)
        try (kept + "\n").write(toFile: fixture.layout.auditLog, atomically: false, encoding: .utf8)
        try "1 \(Digest.sha256Hex(Array(kept.utf8)))\n".write(toFile: fixture.layout.auditHead, atomically: false, encoding: .utf8)
        #expect(AuditVerifier.verify(dataDirectory: fixture.dataDirectory) == .intact(lines: 1), "consistent on its own")

        _ = try? await engine.submit(envelope: Array("{}".utf8), peer: "ci")
        let events = try Self.lines(fixture).map(\.event)
        #expect(events == ["accepted", "chain_broken", "refused"])
        let status = engine.auditStatus
        #expect(!status.intact)
        #expect(status.problem?.contains("changed behind the agent's back") == true, "\(status)")
    }

    /// Deleting the log and its head while the agent is stopped: the next start finds
    /// deployment records without a log, records the break once, and stays degraded.
    @Test func aDeletedLogIsFoundAtStartAndRecordedOnce() async throws {
        let fixture = try AgentFixture()
        defer { fixture.remove() }
        do {
            let engine = try fixture.engine()
            let v1 = try fixture.artifact("v1")
            _ = try await engine.deploy(try fixture.envelope("v1", artifact: v1), artifact: v1.path)
        }
        try FileManager.default.removeItem(atPath: fixture.layout.auditLog)
        try FileManager.default.removeItem(atPath: fixture.layout.auditHead)
        do {
            let engine = try fixture.engine()
            #expect(!engine.auditStatus.intact)
            #expect(engine.auditStatus.problem?.contains("gone") == true)
        }
        do {
            // A second start does not record the same break again, and stays degraded.
            let engine = try fixture.engine()
            #expect(!engine.auditStatus.intact)
            #expect(engine.auditStatus.problem?.contains("recorded at line 1") == true, "\(engine.auditStatus)")
        }
        #expect(try Self.lines(fixture).map(\.event) == ["chain_broken"])
    }

    /// A flipped byte in the middle, found at start; `audit verify` keeps naming the line.
    @Test func aChangedLineIsFoundAtStart() async throws {
        let fixture = try AgentFixture()
        defer { fixture.remove() }
        do {
            let engine = try fixture.engine()
            let v1 = try fixture.artifact("v1")
            _ = try await engine.deploy(try fixture.envelope("v1", artifact: v1), artifact: v1.path)
        }
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: fixture.layout.auditLog)))
        // The release name in the first line: "v1" becomes "w1".
        let needle = Array("\"v1\"".utf8)
        let at = try #require(bytes.indices.first { Array(bytes[$0..<min($0 + needle.count, bytes.count)]) == needle }) + 1
        bytes[at] = UInt8(ascii: "w")
        try Data(bytes).write(to: URL(fileURLWithPath: fixture.layout.auditLog))
        let engine = try fixture.engine()
        #expect(engine.auditStatus.problem?.hasPrefix("line 1 ") == true, "\(engine.auditStatus)")
        #expect(try Self.lines(fixture).last?.event == "chain_broken")
        guard case .broken(let line, _) = AuditVerifier.verify(dataDirectory: fixture.dataDirectory) else {
            Issue.record("the changed line is no longer reported")
            return
        }
        #expect(line == 1)
    }

    /// The head is signed with the agent's key over a fixed text; the hash of an earlier
    /// line is served for comparison with a head recorded before.
    @Test func theHeadIsSignedWithTheAgentsKey() async throws {
        let fixture = try AgentFixture()
        defer { fixture.remove() }
        let engine = try fixture.engine()
        _ = try? await engine.submit(envelope: Array("{}".utf8), peer: "ci")
        _ = try? await engine.submit(envelope: Array("{}".utf8), peer: "ops")
        let key = P256.Signing.PrivateKey()
        let head = try engine.signedAuditHead(key: key, line: 1)
        #expect(head.lines == 2)
        #expect(head.hostID == "host-1")
        let signature = try P256.Signing.ECDSASignature(derRepresentation: try #require(Base64.decode(head.signature)))
        #expect(key.publicKey.isValidSignature(signature, for: head.signedText))
        var forged = head
        forged.lines = 1
        #expect(!key.publicKey.isValidSignature(signature, for: forged.signedText))
        let first = try #require(try String(contentsOfFile: fixture.layout.auditLog, encoding: .utf8).split(separator: "\n").first)
        #expect(head.at == SignedAuditHead.LineHash(line: 1, hash: Digest.sha256Hex(Array(first.utf8))))
        #expect(try engine.signedAuditHead(key: key, line: 9).at?.hash == nil)
    }
}
