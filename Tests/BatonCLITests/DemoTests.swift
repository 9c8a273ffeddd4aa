import BatonTestSupport
import Foundation
import Testing

@Suite("baton demo")
struct DemoTests {
    @Test("baton demo runs every step as expected, exits 0 and leaves no process or directory behind", .timeLimit(.minutes(3)))
    func demo() async throws {
        let tmp = try TemporaryDirectory(prefix: "baton-demo-test")
        defer { tmp.remove() }
        let result = try await offThePool {
            try ProcessRunner.run(ProcessRunner.executable("baton"), ["demo"], environment: ["TMPDIR": tmp.path + "/"])
        }
        #expect(result.status == 0, "stdout:\n\(result.stdout)\nstderr:\n\(result.stderr)")
        #expect(result.stdout.contains("demo: every step behaved as expected"))
        for step in ["v1 everywhere", "v2 rolled out", "v3 halted after the canary", "every service answers as v2", "status: no drift"] {
            #expect(result.stdout.contains("✓ \(step)"), "\(step)")
        }
        #expect(result.stdout.contains("503 broken v3"), "the canary's health check saw the broken service over HTTP")
        // Cleaned up: the demo directory is gone and no agent or service of it runs.
        let left = try FileManager.default.contentsOfDirectory(atPath: tmp.path).filter { $0.hasPrefix("baton-demo.") }
        #expect(left.isEmpty, "left behind: \(left)")
        let ps = try ProcessRunner.run("/bin/ps", ["-eo", "args"])
        #expect(!ps.stdout.contains(tmp.path), "processes of the demo still run:\n\(ps.stdout)")
    }
}
