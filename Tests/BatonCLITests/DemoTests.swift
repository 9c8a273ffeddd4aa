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
        for step in ["v1 everywhere", "v2 rolled out", "v3 halted after the canary", "every service answers as v2", "status: no drift",
                     "evidence exported", "evidence verified"] {
            #expect(result.stdout.contains("✓ \(step)"), "\(step)")
        }
        #expect(result.stdout.contains("503 broken v3"), "the canary's health check saw the broken service over HTTP")
        #expect(result.stdout.contains("Verdict: VERIFIED"), "the halted rollout's evidence verified offline")
        // Cleaned up: the demo directory is gone and no agent or service of it runs.
        let left = try FileManager.default.contentsOfDirectory(atPath: tmp.path).filter { $0.hasPrefix("baton-demo.") }
        #expect(left.isEmpty, "left behind: \(left)")
        let ps = try ProcessRunner.run("/bin/ps", ["-eo", "args"])
        #expect(!ps.stdout.contains(tmp.path), "processes of the demo still run:\n\(ps.stdout)")
    }
}

extension DemoTests {
    /// Ctrl-C in the middle of a rollout: the demo stops its agents and services, removes
    /// its directory, and no process of it is left (a service its agent started while the
    /// clean-up ran stops by itself once the directory is gone).
    @Test("an interrupted demo leaves no process or directory behind", .timeLimit(.minutes(3)))
    func interrupted() async throws {
        let tmp = try TemporaryDirectory(prefix: "baton-demo-int")
        defer { tmp.remove() }
        let demo = try BackgroundCommand(
            "/usr/bin/env", ["TMPDIR=\(tmp.path)/", ProcessRunner.executable("baton"), "demo"], currentDirectory: tmp.path)
        // Mid-rollout: v2's canary is being deployed.
        _ = try await demo.waitForLine(containing: "3/6", timeout: 120)
        try await Task.sleep(for: .milliseconds(300))
        // A terminal's Ctrl-C reaches the whole foreground process group; here the demo
        // and the command it is running get it.
        kill(demo.process.processIdentifier, SIGINT)
        for pid in try Self.processes(containing: tmp.path) { kill(pid, SIGINT) }
        let status = await demo.waitForExit(timeout: 60)
        #expect(status == 130, "\(demo.output.suffix(5))\n\(demo.stderr)")
        var left: [Int32] = []
        for _ in 0..<50 {
            left = try Self.processes(containing: tmp.path)
            if left.isEmpty { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(left.isEmpty, "processes of the demo still run: \(left)")
        let dirs = try FileManager.default.contentsOfDirectory(atPath: tmp.path).filter { $0.hasPrefix("baton-demo.") }
        #expect(dirs.isEmpty, "left behind: \(dirs)")
    }

    /// Pids whose command line mentions `text` (other than this test process).
    static func processes(containing text: String) throws -> [Int32] {
        let ps = try ProcessRunner.run("/bin/ps", ["-eo", "pid=,args="])
        return ps.stdout.split(separator: "\n").compactMap { line in
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard trimmed.contains(text), !trimmed.contains("/bin/ps") else { return nil }
            return Int32(trimmed.prefix { $0.isNumber })
        }.filter { $0 != getpid() }
    }
}
