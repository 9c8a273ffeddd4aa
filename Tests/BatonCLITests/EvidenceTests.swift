import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

/// Agent-signed receipts, `baton evidence` and `baton evidence verify`, on real agents: a
/// rollout whose canary fails on one host and is reverted on the other, its evidence
/// exported and checked offline, then each kind of tampering caught on its own.
@Suite("Evidence: receipts, export and offline verification", .serialized)
struct EvidenceTests {
    /// Staging needs two approvals (ci and bob); returns one. The agents reload it.
    static func requireTwoApprovals(_ fleet: LocalFleet) async throws {
        let keys = try await fleet.run(["keys", "generate", "bob", "--dir", "keys"])
        try #require(keys.status == 0, "\(keys.stderr)")
        try """
            keys:
              ci: keys/ci.pub
              bob: keys/bob.pub
            environments:
              staging: {threshold: 2, keys: [ci, bob], rollbackThreshold: 1}
              production: {threshold: 2, keys: [ci, bob], rollbackThreshold: 1}
            """.write(toFile: fleet.dir.child("trust-policy.yaml"), atomically: true, encoding: .utf8)
        for daemon in fleet.daemons.values {
            daemon.signal(SIGHUP)
            try await daemon.waitForLine(containing: "trust policy reloaded")
        }
    }

    /// `release create`, then ci and bob sign.
    static func approved(_ fleet: LocalFleet, _ release: String, failOn: [String] = []) async throws -> String {
        let artifact = try fleet.artifact(release, failOn: failOn)
        let created = try await fleet.run(
            ["release", "create", "web", "--artifact", artifact, "--release", release, "--environment", "staging",
             "--notes", "evidence test \(release)", "-o", "\(release).manifest.json"])
        try #require(created.status == 0, "release create: \(created.stderr)")
        // Each approver signs the same envelope: ci makes it, bob adds a signature.
        for key in ["ci", "bob"] {
            let file = key == "ci" ? "\(release).manifest.json" : "\(release).manifest.envelope.json"
            let signed = try await fleet.run(["manifest", "sign", file, "--key", "keys/\(key).key"])
            try #require(signed.status == 0, "sign by \(key): \(signed.stderr)")
        }
        return "\(release).manifest.envelope.json"
    }

    @Test("a canary failure and a revert: the evidence verifies offline; a changed manifest byte, a changed receipt byte, a receipt signed with another host's key and a missing approval are each caught")
    func evidenceOfAHaltedRollout() async throws {
        let fleet = try await LocalFleet.start(hosts: 3)
        defer { fleet.shutdown() }
        try await Self.requireTwoApprovals(fleet)
        let v1 = try await Self.approved(fleet, "v1")
        let first = try await fleet.run(["rollout", v1, "--plain"])
        try #require(first.status == 0, "v1: \(first.stdout)\(first.stderr)")

        // v2 fails its health check on host-2: the two-host canary halts, host-2's agent
        // rolls itself back, and the controller reverts host-1, which had succeeded.
        let v2 = try await Self.approved(fleet, "v2", failOn: ["host-2"])
        let run = try await fleet.run(["rollout", v2, "--canary", "2", "--json"])
        #expect(run.status == 1, "\(run.stdout)\(run.stderr)")
        let summaryLine = try #require(run.stdout.split(separator: "\n").last)
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(summaryLine.utf8)) as? [String: Any])
        let rolloutID = try #require(summary["rolloutID"] as? String)
        for host in fleet.hostIDs { #expect(fleet.current(host) == "v1", "\(host)") }

        // Every agent kept a signed receipt of each deployment's end, and serves it.
        for host in ["host-1", "host-2"] {
            let receipts = (try? FileManager.default.contentsOfDirectory(atPath: fleet.dir.child("hosts/\(host)/data/state/receipts"))) ?? []
            #expect(receipts.count == (host == "host-1" ? 3 : 2), "\(host): \(receipts)")
        }

        let exported = try await fleet.run(["evidence", rolloutID, "-o", "evidence.json"])
        try #require(exported.status == 0, "\(exported.stdout)\(exported.stderr)")
        #expect(exported.stdout.contains("2 envelope(s), 3 receipt(s) from 3 host(s)"), "\(exported.stdout)")
        // The bundle is what Protocol/evidence.schema.json describes (Python's jsonschema).
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let schema = try ProcessRunner.run(
            "/usr/bin/env", ["python3", "\(repository)/Protocol/interop/schema_check.py", "\(repository)/Protocol/evidence.schema.json",
                             fleet.dir.child("evidence.json")])
        #expect(schema.status == 0 && schema.stdout.contains("\"valid\": true"), "\(schema.stdout)\(schema.stderr)")

        // Offline: only the bundle, the CA and the trust policy.
        let verify = ["evidence", "verify", "--ca", "pki/ca/ca.pem", "--trust", "trust-policy.yaml"]
        let text = try await fleet.run(verify + ["evidence.json"])
        #expect(text.status == 0, "\(text.stdout)\(text.stderr)")
        #expect(text.stdout.contains("Verdict: VERIFIED"), "\(text.stdout)")
        #expect(text.stdout.contains("✓ rollout v2, serial"), "\(text.stdout)")
        let approvalLine = text.stdout.split(separator: "\n").first { $0.contains("✓ rollout v2") } ?? ""
        #expect(approvalLine.contains("ci") && approvalLine.contains("bob") && approvalLine.contains("2 of 2 required"), "\(text.stdout)")
        #expect(text.stdout.contains("✓ revert v1"), "\(text.stdout)")
        #expect(text.stdout.contains("1 of 1 required for a return"), "\(text.stdout)")
        #expect(text.stdout.contains("✓ host-2 ran v2") && text.stdout.contains("rolled_back: health_check_failed"), "\(text.stdout)")
        #expect(text.stdout.contains("✓ host-1 reverted to v1"), "\(text.stdout)")

        let report = try Self.verifyJSON(fleet, verify, "evidence.json")
        #expect(report.status == 0)
        #expect(report.object["verdict"] as? String == "verified")
        let receipts = try #require(report.object["receipts"] as? [[String: Any]])
        let outcomes = Set(receipts.map { "\($0["host"] as? String ?? "?") \($0["role"] as? String ?? "?") \($0["release"] as? String ?? "?") \($0["outcome"] as? String ?? "?")" })
        #expect(outcomes == ["host-1 rollout v2 succeeded", "host-1 revert v1 succeeded", "host-2 rollout v2 rolled_back"], "\(outcomes)")

        // The bundle as a tamperer would edit it.
        let original = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: fleet.dir.child("evidence.json")))) as? [String: Any])
        func tampered(_ name: String, _ change: (inout [String: Any]) throws -> Void) throws -> String {
            var copy = original
            try change(&copy)
            let path = "tampered-\(name).json"
            try JSONSerialization.data(withJSONObject: copy, options: [.sortedKeys]).write(to: URL(fileURLWithPath: fleet.dir.child(path)))
            return path
        }
        func problems(_ path: String) throws -> [String] {
            let result = try Self.verifyJSON(fleet, verify, path)
            #expect(result.status == 1, "\(path) passed")
            #expect(result.object["verdict"] as? String == "failed")
            return ((result.object["problems"] as? [[String: Any]]) ?? []).map { "\($0["code"] as? String ?? "?")/\($0["detail"] as? String ?? "-")" }
        }

        // 1. One byte of the rollout's manifest: "v2" becomes "v3".
        let manifestByte = try tampered("manifest") { bundle in
            try Self.editEnvelope(&bundle, index: 0) { envelope in
                var payload = try Self.payload(envelope)
                let release = Array(#""v2""#.utf8)
                let at = try #require(Self.find(release, in: payload))
                payload[at + 2] = UInt8(ascii: "3")
                envelope["payload"] = Base64.encode(payload)
            }
        }
        #expect(try problems(manifestByte).contains("envelope_refused/signature_invalid"))

        // 2. One byte of a receipt: host-2's "rolled_back" made "rolled_bacK".
        let receiptByte = try tampered("receipt") { bundle in
            try Self.editReceipt(&bundle, host: "host-2", role: "rollout") { receipt in
                var payload = try Self.payload(receipt)
                let outcome = Array(#""rolled_back""#.utf8)
                let at = try #require(Self.find(outcome, in: payload))
                payload[at + outcome.count - 2] = UInt8(ascii: "K")
                receipt["payload"] = Base64.encode(payload)
            }
        }
        #expect(try problems(receiptByte) == ["receipt_signature_invalid/-"])

        // 3. host-2's receipt signed again with host-3's key: with host-3's certificate it
        //    names the wrong host; with host-2's certificate the signature fails.
        for (name, certificateHost, expected) in [("other-host", "host-3", "receipt_host_mismatch/-"), ("other-key", "host-2", "receipt_signature_invalid/-")] {
            let path = try tampered(name) { bundle in
                try Self.editReceipt(&bundle, host: "host-2", role: "rollout") { receipt in
                    let payload = try Self.payload(receipt)
                    receipt["signatures"] = [["sig": try Self.opensslSign(payload, key: fleet.dir.child("hosts/host-3/tls/host-3.key"), in: fleet)]]
                    receipt["certificates"] = try String(contentsOfFile: fleet.dir.child("hosts/\(certificateHost)/tls/\(certificateHost).pem"), encoding: .utf8)
                }
            }
            #expect(try problems(path) == [expected], "\(name)")
        }

        // 4. A missing approval: bob's signature removed leaves 1 of the 2 required.
        let approval = try tampered("approval") { bundle in
            try Self.editEnvelope(&bundle, index: 0) { envelope in
                var signatures = try #require(envelope["signatures"] as? [[String: Any]])
                signatures.removeLast()
                envelope["signatures"] = signatures
            }
        }
        // The agents counted bob's signature: their receipts say so.
        #expect(Set(try problems(approval)) == ["envelope_refused/threshold_not_met", "receipt_signers_mismatch/-"])

        // The controller's account edited to claim another release than the one signed.
        let account = try tampered("account") { bundle in
            var rollout = try #require(bundle["rollout"] as? [String: Any])
            rollout["release"] = "v9"
            bundle["rollout"] = rollout
        }
        #expect(try problems(account) == ["manifest_mismatch/-"])

        // host-2's genuine receipt filed as host-3's: it names host-2, and host-2's is missing.
        let refiled = try tampered("refiled") { bundle in
            var entries = try #require(bundle["receipts"] as? [[String: Any]])
            let index = try #require(entries.firstIndex { $0["host"] as? String == "host-2" })
            entries[index]["host"] = "host-3"
            bundle["receipts"] = entries
        }
        #expect(Set(try problems(refiled)) == ["receipt_host_mismatch/-", "receipt_missing/-"])

        // And a receipt left out of the bundle.
        let missing = try tampered("missing") { bundle in
            bundle["receipts"] = ((bundle["receipts"] as? [[String: Any]]) ?? []).filter { $0["role"] as? String != "revert" }
        }
        #expect(try problems(missing) == ["receipt_missing/-"])

        // Another fleet's CA vouches for none of these agents.
        let otherCA = try await fleet.run(["pki", "init", "other-ca"])
        try #require(otherCA.status == 0, "\(otherCA.stderr)")
        let foreign = try Self.verifyJSON(fleet, ["evidence", "verify", "--ca", "other-ca/ca.pem", "--trust", "trust-policy.yaml"], "evidence.json")
        #expect(foreign.status == 1)
        let untrusted = ((foreign.object["problems"] as? [[String: Any]]) ?? []).compactMap { $0["code"] as? String }
        #expect(untrusted == Array(repeating: "receipt_certificate_untrusted", count: 3), "\(untrusted)")

        // The text verdict names the problem for a person, with its code.
        let failed = try await fleet.run(verify + [approval])
        #expect(failed.status == 1)
        #expect(failed.stdout.contains("Verdict: FAILED (3 problems)"), "\(failed.stdout)")
        #expect(failed.stdout.contains("✗ receipt_signers_mismatch: receipt host-1"), "\(failed.stdout)")
        #expect(failed.stdout.contains("✗ envelope_refused (threshold_not_met)"), "\(failed.stdout)")

        // Bad input: each with its code, nothing written.
        let unknown = try await fleet.run(["evidence", "20991231-000000-web-000000", "-o", "unknown.json"])
        #expect(unknown.status == 2 && unknown.stderr.contains("rollout_unknown"), "\(unknown.stderr)")
        #expect(!FileManager.default.fileExists(atPath: fleet.dir.child("unknown.json")))
        let again = try await fleet.run(["evidence", rolloutID, "-o", "evidence.json"])
        #expect(again.status == 2 && again.stderr.contains("file_exists"), "never overwrites: \(again.stderr)")
        let absent = try await fleet.run(verify + ["absent.json"])
        #expect(absent.status == 2 && absent.stderr.contains("file_not_found"), "\(absent.stderr)")
        try "{\"format\": \"baton-evidence-v1\", \"format\": \"x\"}".write(toFile: fleet.dir.child("duplicate.json"), atomically: false, encoding: .utf8)
        #expect(try problems("duplicate.json") == ["evidence_malformed/-"])

        // `baton status` collects the receipts the history lacks: each host's last
        // deployment (host-1's revert, host-2's v2, host-3's v1).
        let cleared = try ProcessRunner.run(
            "/usr/bin/env", ["python3", "-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('DELETE FROM receipts'); c.commit()",
                             fleet.statePath + "/history.sqlite"])
        try #require(cleared.status == 0, "\(cleared.stderr)")
        let emptied = try await fleet.run(["evidence", rolloutID, "--offline", "-o", "emptied.json"])
        #expect(emptied.stdout.contains("0 receipt(s)"), "\(emptied.stdout)")
        let status = try await fleet.run(["status", "web"])
        #expect(status.status == 0, "\(status.stdout)\(status.stderr)")
        let collected = try await fleet.run(["evidence", rolloutID, "--offline", "-o", "collected.json"])
        #expect(collected.stdout.contains("2 receipt(s)"), "\(collected.stdout)")
        // host-1's v2 deployment was not its last: the bundle says its receipt is missing.
        let partial = try await fleet.run(verify + ["--json", "collected.json"])
        #expect(partial.status == 1)
        #expect(partial.stdout.contains("receipt_missing") && partial.stdout.contains("host-1"), "\(partial.stdout)")
        // Without --offline, export asks host-1 for it: the bundle is complete again.
        let complete = try await fleet.run(["evidence", rolloutID, "-o", "complete.json"])
        #expect(complete.stdout.contains("3 receipt(s)") && complete.stderr.isEmpty, "\(complete.stdout)\(complete.stderr)")
        #expect(try await fleet.run(verify + ["complete.json"]).status == 0)
        // With host-1's agent gone, what cannot be collected is said, and the rest exported.
        _ = try ProcessRunner.run(
            "/usr/bin/env", ["python3", "-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('DELETE FROM receipts'); c.commit()",
                             fleet.statePath + "/history.sqlite"])
        await fleet.kill("host-1")
        let partly = try await fleet.run(["evidence", rolloutID, "-o", "partly.json"])
        #expect(partly.status == 0 && partly.stdout.contains("1 receipt(s)"), "\(partly.stdout)\(partly.stderr)")
        #expect(partly.stderr.contains("warning: 2 receipt(s) of this rollout could not be collected"), "\(partly.stderr)")
    }

    // MARK: Helpers

    static func verifyJSON(_ fleet: LocalFleet, _ verify: [String], _ path: String) throws -> (status: Int32, object: [String: Any]) {
        let result = try ProcessRunner.run(
            ProcessRunner.executable("baton"), verify + ["--json", path], currentDirectory: fleet.dir.path)
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stdout)\(result.stderr)")
        return (result.status, object)
    }

    static func editEnvelope(_ bundle: inout [String: Any], index: Int, _ change: (inout [String: Any]) throws -> Void) throws {
        var envelopes = try #require(bundle["envelopes"] as? [[String: Any]])
        var envelope = try #require(envelopes[index]["envelope"] as? [String: Any])
        try change(&envelope)
        envelopes[index]["envelope"] = envelope
        bundle["envelopes"] = envelopes
    }

    static func editReceipt(_ bundle: inout [String: Any], host: String, role: String, _ change: (inout [String: Any]) throws -> Void) throws {
        var entries = try #require(bundle["receipts"] as? [[String: Any]])
        let index = try #require(entries.firstIndex { $0["host"] as? String == host && $0["role"] as? String == role })
        var receipt = try #require(entries[index]["receipt"] as? [String: Any])
        try change(&receipt)
        entries[index]["receipt"] = receipt
        bundle["receipts"] = entries
    }

    /// The decoded `payload` of a DSSE document.
    static func payload(_ document: [String: Any]) throws -> [UInt8] {
        let text = try #require(document["payload"] as? String)
        return try #require(Base64.decode(text))
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        return (0...(haystack.count - needle.count)).first { Array(haystack[$0..<($0 + needle.count)]) == needle }
    }

    /// ECDSA P-256 over the receipt's DSSE pre-authentication encoding, by OpenSSL: a
    /// signature made outside Baton with another agent's key.
    static func opensslSign(_ payload: [UInt8], key: String, in fleet: LocalFleet) throws -> String {
        let message = fleet.dir.child("pae-\(UUID().uuidString)")
        try Data(Envelope.preAuthenticationEncoding(payloadType: "application/vnd.baton.receipt.v1+json", payload: payload))
            .write(to: URL(fileURLWithPath: message))
        let signature = message + ".sig"
        let result = try ProcessRunner.run("/usr/bin/openssl", ["dgst", "-sha256", "-sign", key, "-out", signature, message])
        try #require(result.status == 0, "openssl: \(result.stderr)")
        return Base64.encode(try Data(contentsOf: URL(fileURLWithPath: signature)))
    }
}
