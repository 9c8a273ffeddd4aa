import BatonProtocol
import BatonTestSupport
import Crypto
import Foundation
import Testing

@testable import BatonAgent

/// When a deployment ends, the agent signs a receipt with the key of its TLS certificate
/// and keeps it; one that ended without one (a crash, an older agent) is signed when asked.
@Suite struct ReceiptTests {
    /// A fixture whose `batond.yaml` names a real P-256 key and certificate (made by OpenSSL).
    static func fixture() throws -> (AgentFixture, P256.Signing.PrivateKey, String) {
        let fixture = try AgentFixture(extraConfig: """
            tls: {certificate: tls/host.pem, privateKey: tls/host.key, ca: tls/host.pem}
            """)
        let tls = fixture.dir.child("tls")
        try FileManager.default.createDirectory(atPath: tls, withIntermediateDirectories: true)
        let made = try ProcessRunner.run(
            "/usr/bin/openssl",
            ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=host-1",
             "-days", "1", "-keyout", "\(tls)/host.key", "-out", "\(tls)/host.pem"])
        try #require(made.status == 0, "\(made.stderr)")
        let key = try P256.Signing.PrivateKey(pemRepresentation: try String(contentsOfFile: "\(tls)/host.key", encoding: .utf8))
        return (fixture, key, try String(contentsOfFile: "\(tls)/host.pem", encoding: .utf8))
    }

    @Test func aDeploymentThatEndsLeavesASignedReceiptAtTheHeadOfTheAuditChain() async throws {
        let (fixture, key, certificate) = try Self.fixture()
        defer { fixture.remove() }
        let engine = try fixture.engine()
        let v1 = try fixture.artifact("v1")
        let record = try await engine.deploy(try fixture.envelope("v1", artifact: v1), artifact: v1.path)
        #expect(record.phase == .succeeded)

        let path = fixture.layout.stateDirectory + "/receipts/\(record.id).json"
        let stored = try BatonJSON.decode(SignedReceipt.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(stored.isSigned(by: key.publicKey))
        #expect(!stored.isSigned(by: P256.Signing.PrivateKey().publicKey))
        #expect(stored.certificates == certificate)
        #expect(stored.signatures.first?.keyid == SignedReceipt.keyID(of: key.publicKey))
        let receipt = try stored.receipt()
        #expect(receipt.hostID == "host-1" && receipt.app == "web" && receipt.release == "v1" && receipt.serial == record.serial)
        #expect(receipt.manifestDigest == record.payloadDigest)
        #expect(receipt.artifactSHA256 == v1.sha256)
        #expect(receipt.signers.map(\.keyid) == [fixture.key.keyid])
        #expect(receipt.outcome == .succeeded && receipt.error == nil && receipt.live == "v1" && !receipt.isReturn)
        #expect(receipt.timings.map(\.phase).contains(.switching))
        // Signed after the end was audited: its position is the chain's head.
        let audit = engine.auditStatus
        #expect(receipt.audit == Receipt.AuditPosition(lines: audit.lines, head: audit.head))
        #expect(audit.lines == 2, "accepted and finished")
        #expect(await engine.receipt(record.id) == stored)

        // A prepare hook that fails: the receipt says so, with the code.
        let v2 = try fixture.artifact("v2")
        let failed = try await engine.deploy(
            try fixture.envelope("v2", artifact: v2, hooks: Hooks(prepare: Hook(command: .shell("exit 3")))), artifact: v2.path)
        #expect(failed.phase == .failed)
        let failure = try #require(await engine.receipt(failed.id)).receipt()
        #expect(failure.outcome == .failed && failure.error?.code == failed.error?.code && failure.live == "v1")
        #expect(failure.previousRelease == "v1")
        #expect(failure.audit.lines == 4)

        // One lost (the agent died between its end and the receipt): signed when asked.
        try FileManager.default.removeItem(atPath: path)
        let again = try #require(await engine.receipt(record.id))
        #expect(again.isSigned(by: key.publicKey))
        #expect(try again.receipt().manifestDigest == record.payloadDigest)
        #expect(FileManager.default.fileExists(atPath: path))
        #expect(await engine.receipt("web-999") == nil)
        #expect(await engine.receipt("../etc") == nil)
    }

    @Test func anAgentWithoutAKeyKeepsNoReceiptAndDeploysAsBefore() async throws {
        let fixture = try AgentFixture()
        defer { fixture.remove() }
        let engine = try fixture.engine()
        let v1 = try fixture.artifact("v1")
        let record = try await engine.deploy(try fixture.envelope("v1", artifact: v1), artifact: v1.path)
        #expect(record.phase == .succeeded)
        #expect(await engine.receipt(record.id) == nil)
        #expect(!FileManager.default.fileExists(atPath: fixture.layout.stateDirectory + "/receipts/\(record.id).json"))
    }
}
