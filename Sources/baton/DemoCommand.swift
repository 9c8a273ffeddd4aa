import ArgumentParser
import BatonCLISupport
import BatonController
import BatonDemo
import Foundation

/// `baton demo`: all of Baton on this machine. In a temporary directory: a fleet CA,
/// keys and certificates, four `batond run` agents on 127.0.0.1, and a small HTTP
/// service as the app (restarted by `activate`, checked over HTTP). Then v1 to every
/// host, v2 with a canary and batches, v3 whose health check fails on the canary (halted,
/// rolled back), and `baton status` and `baton history`. Every step runs the real
/// commands, so what it prints is what an operator sees. Cleans up on exit and Ctrl-C.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run Baton end to end on this machine: four local agents, three releases, a halted rollout.",
        discussion: "Exits 0 when every step behaved as expected.",
        subcommands: [DemoServe.self, DemoActivate.self, DemoProbe.self])

    @Option(help: ArgumentHelp("The batond binary (default: next to this baton, then PATH).", valueName: "path")) var batond: String?
    @Option(help: "Number of agents.") var hosts = 4
    @Flag(help: "Keep the demo directory (and print its path) instead of removing it.") var keep = false

    func run() async throws {
        guard (2...20).contains(hosts) else { throw CLIError(code: "invalid_value", message: "--hosts must be 2 to 20") }
        let baton = DemoFleet.selfPath()
        let batondPath = try batond ?? DemoFleet.findBatond(next: baton)
        let dir = try DemoFleet.makeDirectory()
        let demo = DemoFleet(directory: dir, baton: baton, batond: batondPath, hostCount: hosts)
        let interrupts = InterruptWatcher { _ in
            demo.cleanUp(keep: false, interrupted: true)
            Output.error("\ninterrupted: agents and services stopped, \(dir) removed")
            Foundation.exit(130)
        }
        defer {
            interrupts.stop()
            demo.cleanUp(keep: keep)
            // Interrupted: the steps after Ctrl-C failed for that reason alone.
            if demo.interrupted { Foundation.exit(130) }
            if keep { Output.line("kept \(dir)") }
        }
        var ok = true
        func expect(_ step: String, _ status: Int32, _ expected: Int32) {
            let good = status == expected
            ok = ok && good
            Output.line(good ? "✓ \(step) (exit \(status), as expected)" : "✗ \(step): exit \(status), expected \(expected)")
        }

        Self.banner("1/6 a fleet in \(dir): CA, controller certificate, signing key, \(hosts) agents, a small HTTP service as the app")
        try demo.setUp()
        for line in demo.summary { Output.line("  " + line) }

        Self.banner("2/6 v1 to every host at once (baton deploy: create, sign, roll out)")
        expect("v1 everywhere", demo.baton(["deploy", "demo-web", "--artifact", "v1.tar.gz", "--release", "v1", "--environment", "demo",
                                            "--key", "keys/ci.key", "--notes", "first release", "--brief"]), 0)

        Self.banner("3/6 v2 the approval way: release create, manifest sign, rollout with a canary and batches of 2")
        _ = demo.baton(["release", "create", "demo-web", "--artifact", "v2.tar.gz", "--release", "v2", "--environment", "demo",
                        "--notes", "faster pages", "--source", "demo@v2", "-o", "v2.manifest.json"])
        _ = demo.baton(["manifest", "sign", "v2.manifest.json", "--key", "keys/ci.key"])
        expect("v2 rolled out", demo.baton(["rollout", "v2.manifest.envelope.json", "--canary", "1", "--batch", "2", "--brief"]), 0)

        Self.banner("4/6 v3 is broken: its health check fails on the canary; the rollout halts and the canary goes back to v2")
        _ = demo.baton(["release", "create", "demo-web", "--artifact", "v3.tar.gz", "--release", "v3", "--environment", "demo",
                        "--notes", "broken on purpose", "-o", "v3.manifest.json"])
        _ = demo.baton(["manifest", "sign", "v3.manifest.json", "--key", "keys/ci.key"])
        expect("v3 halted after the canary", demo.baton(["rollout", "v3.manifest.envelope.json", "--canary", "1", "--batch", "2", "--brief"]), 1)
        let live = demo.liveReleases()
        let allOnV2 = live.values.allSatisfy { $0 == "v2" }
        ok = ok && allOnV2
        Output.line(allOnV2 ? "✓ every service answers as v2" : "✗ services answer: \(live)")

        Self.banner("5/6 baton status: what every host runs")
        expect("status: no drift", demo.baton(["status", "demo-web"]), 0)

        Self.banner("6/6 baton history")
        expect("history", demo.baton(["history", "demo-web"]), 0)

        Self.banner("baton evidence: v3's halted rollout, exported, then verified offline against the CA and the trust policy")
        let halted = (try? SQLiteHistoryStore(path: "\(dir)/state/history.sqlite").rollouts(app: "demo-web", limit: 1))?.first?.id
        expect("evidence exported", demo.baton(["evidence", halted ?? "unknown", "-o", "v3.evidence.json"]), 0)
        expect("evidence verified", demo.baton(
            ["evidence", "verify", "v3.evidence.json", "--ca", "pki/ca/ca.pem", "--trust", "trust-policy.yaml"]), 0)
        Self.banner("and the way back, practised: baton drill takes web-2 to v1, health-checks it there, and brings it back to v2")
        expect("drill on web-2", demo.baton(["drill", "demo-web", "--environment", "demo", "--hosts", "web-2", "--brief"]), 0)
        let afterDrill = demo.liveReleases()
        let stillOnV2 = afterDrill.values.allSatisfy { $0 == "v2" }
        ok = ok && stillOnV2
        Output.line(stillOnV2 ? "✓ every service answers as v2 after the drill" : "✗ services answer: \(afterDrill)")

        Output.line("")
        Output.line(ok ? "demo: every step behaved as expected" : "demo: some steps did not behave as expected (see ✗ above)")
        if !ok { throw ExitCode(1) }
    }

    static func banner(_ text: String) {
        let palette = Palette.forTerminal(isTTY: isatty(STDOUT_FILENO) == 1)
        Output.line("")
        Output.line(palette.enabled ? "\u{1B}[1m== \(text)\u{1B}[0m" : "== \(text)")
    }
}
