import BatonTestSupport
import Foundation
import Testing

/// A benchmark, not a test: rollouts per minute with N controllers at once, on SQLite (one
/// machine: the controllers share one state directory and its history.sqlite) and on
/// PostgreSQL (each controller its own state directory, one database), side by side.
/// Each controller deploys its own app (`baton deploy`: create, sign, roll out to every
/// host) over and over to the same real agents. Opt-in (`bench/team.sh`, or
/// `BATON_BENCH_TEAM=1`); it prints figures and checks only that the rollouts succeeded.
@Suite(.serialized, .enabled(if: ProcessInfo.processInfo.environment["BATON_BENCH_TEAM"] != nil))
struct TeamRolloutBench {
    static let seconds = Double(ProcessInfo.processInfo.environment["BATON_BENCH_SECONDS"] ?? "") ?? 30
    static let counts = (ProcessInfo.processInfo.environment["BATON_BENCH_CONTROLLERS"] ?? "1 4")
        .split(separator: " ").compactMap { Int($0) }
    static let hosts = Int(ProcessInfo.processInfo.environment["BATON_BENCH_HOSTS"] ?? "") ?? 4

    @Test func rolloutsPerMinuteSideBySide() async throws {
        let fleet = try await LocalFleet.start(hosts: Self.hosts)
        defer { fleet.shutdown() }
        let artifact = try fleet.artifact("bench")
        let appFile = try String(contentsOfFile: fleet.dir.child("apps/web.yaml"), encoding: .utf8)
        for index in 0..<(Self.counts.max() ?? 1) {
            try appFile.replacingOccurrences(of: "app: web", with: "app: app\(index)")
                .write(toFile: fleet.dir.child("apps/app\(index).yaml"), atomically: true, encoding: .utf8)
        }
        let plain = try String(contentsOfFile: fleet.dir.child("baton.yaml"), encoding: .utf8)
        var lines = ["store     controllers  rollouts  failed  seconds  rollouts/min  (\(Self.hosts) agents, one app per controller)"]
        for store in ["sqlite", "postgres"] {
            let config = store == "sqlite" ? plain : plain + "\nhistory: {postgres: \"\(try PostgresServer.createDatabase())\", tls: disable}\n"
            try config.write(toFile: fleet.dir.child("baton.yaml"), atomically: true, encoding: .utf8)
            for count in Self.counts {
                let start = Date()
                let deadline = start.addingTimeInterval(Self.seconds)
                let results = await withTaskGroup(of: (Int, Int).self) { group in
                    for index in 0..<count {
                        group.addTask {
                            var (succeeded, failed, round) = (0, 0, 0)
                            while Date() < deadline {
                                round += 1
                                var arguments = ["deploy", "app\(index)", "--artifact", artifact, "--release", "\(store)-\(count)-\(round)",
                                                 "--environment", "staging", "--key", "keys/ci.key", "--plain", "--brief"]
                                if store == "postgres" { arguments += ["--state-dir", fleet.dir.child("state-\(store)-\(index)")] }
                                let status = (try? await fleet.run(arguments))?.status ?? -1
                                if status == 0 { succeeded += 1 } else { failed += 1 }
                            }
                            return (succeeded, failed)
                        }
                    }
                    var total = (0, 0)
                    for await (succeeded, failed) in group { total = (total.0 + succeeded, total.1 + failed) }
                    return total
                }
                let elapsed = Date().timeIntervalSince(start)
                #expect(results.1 == 0, "\(store), \(count) controllers: \(results.1) rollouts failed")
                lines.append(String(format: "%@  %-11d  %-8d  %-6d  %-7.1f  %.1f", store.padding(toLength: 8, withPad: " ", startingAt: 0),
                                    count, results.0, results.1, elapsed, Double(results.0) / elapsed * 60))
            }
        }
        print(lines.joined(separator: "\n"))
    }
}
