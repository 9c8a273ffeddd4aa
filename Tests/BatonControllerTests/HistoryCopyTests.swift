import BatonController
import BatonProtocol
import BatonTestSupport
import Crypto
import Foundation
import Testing

/// `baton history migrate --to postgres`: a SQLite history copied into PostgreSQL, read
/// back through the PostgreSQL store as a controller would, and a second copy adds nothing.
@Suite("Copying a SQLite history into PostgreSQL")
struct HistoryCopyTests {
    @Test("every kind of record arrives; copying again (or after new rollouts) adds only what is new")
    func copyIsCompleteAndIdempotent() throws {
        let directory = try TemporaryDirectory(prefix: "baton-copy")
        defer { directory.remove() }
        let sqlite = try SQLiteHistoryStore(path: directory.child("history.sqlite"))
        let start = Date(timeIntervalSince1970: 1_800_000_000.5)
        var record = RolloutRecord(
            id: "r1", app: "web", release: "v2", serial: 7, environment: "staging", strategy: "canary 1", actor: "ci@runner",
            signers: ["ci", "alice"], owner: "team-web", notes: "n", source: "abc", startedAt: start,
            hosts: [HostResult(host: "h1"), HostResult(host: "h2")])
        record.breakGlass = true
        try sqlite.rolloutStarted(record)
        try sqlite.record(RolloutEvent(type: .host, time: start.addingTimeInterval(1), rolloutID: "r1", host: "h1", phase: .fetching,
                                       wave: "canary", deploymentID: "d-1", message: "deploying"))
        try sqlite.record(RolloutEvent(type: .host, time: start.addingTimeInterval(2), rolloutID: "r1", host: "h1", phase: .succeeded,
                                       wave: "canary", deploymentID: "d-1", message: "done"))
        var summary = RolloutSummary(
            rolloutID: "r1", app: "web", release: "v2", serial: 7, environment: "staging", strategy: "canary 1", outcome: .failed,
            halted: true, haltReason: "h2 failed", startedAt: start, finishedAt: start.addingTimeInterval(3),
            hosts: [HostResult(host: "h1", phase: .succeeded), HostResult(host: "h2", phase: .failed)])
        summary.revertSerial = 8
        try sqlite.rolloutFinished(summary)
        let info = RolloutResumeInfo(rolloutID: "r1", envelope: [1, 2, 3], hostIDs: ["h1", "h2"], strategy: RolloutStrategy(), artifactFile: "/a")
        try sqlite.saveResumeInfo(info)
        let head = SeenAuditHead(host: "h1", lines: 4, hash: "aa", time: start, signature: "sig", seenAt: start, verdict: "consistent")
        try sqlite.recordAuditHead(head)
        let lock = LockRequest(app: "web", environment: "staging", rolloutID: "r1", owner: "ci@runner", pid: 1, lease: 60)
        #expect(try sqlite.acquireLock(lock, now: start) == .acquired(term: 1))
        try sqlite.releaseLock(app: "web", environment: "staging", rolloutID: "r1", term: 1, now: start.addingTimeInterval(3))
        let release = try ReleaseRegistryTests.release("v2", serial: 7)
        try sqlite.registerRelease(release)
        let alice = SigningKey()
        let policy = TrustPolicy(keys: ["alice": alice.verifyingKey], environments: ["staging": .init(threshold: 1, keys: ["alice"])])
        try sqlite.addApproval(try ReleaseApprovals.approve(release, with: alice, policy: policy, by: "alice@laptop", now: start))
        #expect(try sqlite.nextSerial(app: "web", environment: "staging", above: 8) == 9)
        // What drills and evidence keep: the rollout's kind and issue time, a drill, an
        // agent's signed receipt and a revert envelope the rollout signed.
        try sqlite.noteRollout(id: "r1", kind: .rollback, issuedAt: start.addingTimeInterval(-3600))
        var drill = DrillRecord(id: "drill-1", app: "web", environment: "staging", actor: "a@b", startedAt: start,
                                hosts: [DrillRecord.Host(host: "h1", original: "v2", previous: "v1")])
        drill.outcome = .succeeded
        drill.finishedAt = start.addingTimeInterval(30)
        drill.timeToRecover = 2.5
        try sqlite.saveDrill(drill)
        let receipt = try ReceiptStoreTests.signedReceipt(host: "h1", id: "d-1", outcome: .succeeded, key: P256.Signing.PrivateKey())
        try sqlite.recordReceipt(CollectedReceipt(host: "h1", deploymentID: "d-1", receipt: receipt, receivedAt: start))
        let manifest = Manifest(
            app: "web", release: "v1", serial: 8, environment: "staging", issuedAt: start, expiresAt: start.addingTimeInterval(3600),
            artifact: ArtifactReference(sha256: String(repeating: "b", count: 64), size: 10, format: .tarGz))
        let revert = SentEnvelope(rolloutID: "r1", role: .revert, envelope: try Envelope.signing(manifest, with: SigningKey()), sentAt: start)
        try sqlite.recordEnvelope(revert)

        let postgres = try PostgresLockTests.open(try PostgresServer.createDatabase())
        let counts = try HistoryCopy.copy(from: sqlite, to: postgres)
        #expect(counts.copied == ["rollouts": 1, "events": 2, "resume": 1, "auditHeads": 1, "lockEvents": 2, "lockTerms": 1,
                                  "releases": 1, "approvals": 1, "serials": 1, "drills": 1, "receipts": 1, "envelopes": 1])
        #expect(counts.present.isEmpty)

        // Read back as any controller on the shared store reads it.
        #expect(try postgres.rollout(id: "r1") == sqlite.rollout(id: "r1"))
        #expect(try postgres.events(rolloutID: "r1") == sqlite.events(rolloutID: "r1"))
        #expect(try postgres.rollout(id: "r1")?.kind == .rollback)
        #expect(try postgres.rollout(id: "r1")?.issuedAt == start.addingTimeInterval(-3600))
        #expect(try postgres.resumeInfo(rolloutID: "r1") == info)
        #expect(try postgres.drills(app: "web", environment: "staging", limit: 5) == sqlite.drills(app: "web", environment: "staging", limit: 5))
        #expect(try postgres.drills(app: "web", environment: nil, limit: 5).map(\.id) == ["drill-1"])
        #expect(try postgres.receipt(host: "h1", deploymentID: "d-1")?.receipt == receipt)
        #expect(try postgres.envelopes(rolloutID: "r1") == [revert])
        #expect(try postgres.lastAuditHead(host: "h1") == head)
        #expect(try postgres.lockEvents(app: "web").map(\.action) == ["acquired", "released"])
        #expect(try postgres.registeredReleases(app: "web", limit: 5) == [release])
        let approvals = try postgres.approvals(app: "web", environment: "staging", serial: 7)
        #expect(ReleaseApprovals.status(of: release, approvals: approvals, policy: policy).isMet)
        // Terms and serials continue above what the old store handed out.
        #expect(try postgres.acquireLock(lock, now: Date()) == .acquired(term: 2))
        #expect(try postgres.nextSerial(app: "web", environment: "staging", above: 0) == 10)

        // Again, after one more rollout on the old store: only that one is new.
        try sqlite.rolloutStarted(RolloutRecord(
            id: "r2", app: "web", release: "v3", serial: 11, environment: "staging", strategy: "batch all", actor: "ci@runner",
            signers: ["ci"], owner: nil, notes: nil, source: nil, startedAt: start.addingTimeInterval(60), hosts: [HostResult(host: "h1")]))
        let again = try HistoryCopy.copy(from: sqlite, to: postgres)
        #expect(again.copied == ["rollouts": 1], "\(again)")
        #expect(again.present == ["rollouts": 1, "resume": 1, "auditHeads": 1, "lockEvents": 2, "lockTerms": 1, "releases": 1,
                                  "approvals": 1, "serials": 1, "drills": 1, "receipts": 1, "envelopes": 1])
        #expect(try postgres.rollouts(app: "web", limit: 10).map(\.id) == ["r2", "r1"])
        #expect(try postgres.events(rolloutID: "r1").count == 2)
    }
}
