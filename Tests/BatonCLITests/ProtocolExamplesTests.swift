import BatonTestSupport
import Foundation
import Testing

/// Protocol/PROTOCOL.md's curl examples work as written: `scripts/protocol-examples`
/// executes every ```sh block of §10 against a real `batond run` (this build's
/// binaries) with certificates from `baton pki`, and checks each answer.
@Suite("PROTOCOL.md curl examples")
struct ProtocolExamplesTests {
    @Test("scripts/protocol-examples runs every curl example of §10 against batond run", .timeLimit(.minutes(1)))
    func examples() throws {
        let result = try ProcessRunner.run(
            "/bin/bash", ["\(ProcessRunner.packageRoot)/scripts/protocol-examples"],
            environment: ["BIN": ProcessRunner.productsDirectory])
        #expect(result.status == 0, "stdout:\n\(result.stdout)\nstderr:\n\(result.stderr)")

        // One line per example, in the document's order: "ok   METHOD PATH STATUS summary".
        let answered = result.stdout.split(separator: "\n").filter { $0.hasPrefix("ok ") }.map {
            $0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().prefix(3).map(String.init)
        }
        let artifact = "/v1/artifacts/sha256/"
        let expected: [(method: String, path: String, status: String)] = [
            ("GET", "/v1/health", "200"),  // the section's opening example
            ("GET", "/v1/health", "200"),  // 10.1
            ("HEAD", artifact, "404"),  // 10.2, before the upload
            ("PUT", artifact, "201"),  // 10.3
            ("HEAD", artifact, "200"),  // 10.2 again, the artifact now held (until the deployment unpacks it)
            ("POST", "/v1/deployments", "202"),  // 10.4
            ("GET", "/v1/deployments/web-42", "200"),  // 10.5
            ("GET", "/v1/deployments/web-42/events", "200"),  // 10.6
            ("GET", "/v1/apps", "200"),  // 10.7
            ("GET", "/v1/apps/web", "200"),
            ("GET", "/v1/apps/web/releases/2026.11.21-1", "200"),  // 10.8, the approved manifest
            ("GET", "/v1/audit/head?line=1", "200"),  // 10.9
            ("GET", "/v1/deployments/web-42/receipt", "200"),  // 10.10, the agent's signed receipt
        ]
        #expect(answered.count == expected.count, "\(result.stdout)")
        for (line, want) in zip(answered, expected) {
            #expect(line.count == 3, "\(line)")
            guard line.count == 3 else { continue }
            #expect(line[0] == want.method, "\(line)")
            #expect(want.path == artifact ? line[1].hasPrefix(artifact) && line[1].count == artifact.count + 64 : line[1] == want.path, "\(line)")
            #expect(line[2] == want.status, "\(line)")
        }
        #expect(result.stdout.contains("ran as written: \(expected.count) answers checked"), "\(result.stdout)")
    }
}
