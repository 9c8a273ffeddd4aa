import BatonAgent
import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

/// `kill -9` of `batond apply` at random moments of many deployments, and of the
/// reconciliation that follows: every time, a restart leaves a complete `current`, no
/// staging, a truthful record, and the next deployment succeeds.
///
/// By default it runs `2 × targets.count` trials: the even ones aim at every phase in
/// `targets` once, the odd ones land at random, and every fourth also kills the
/// reconciliation, so a break in recovery from any phase still fails the suite, in
/// well under a minute (the 64 trials it used to run took 70 to 260 s of every run).
/// The long sweep (hundreds of trials, for the odd moments between phases) is opt-in:
/// `BATON_CRASH_TRIALS=200 swift test --skip-build --filter CrashTests`, or
/// `bench/crash-sweep.sh`, which prints the figures.
@Suite(.serialized) struct CrashTests {
    static let targets: [Aim] = [
        .onePass, .phase(.accepted), .phase(.fetching), .phase(.unpacking), .phase(.preparing), .phase(.switching),
        .phase(.activating), .phase(.checking), .phase(.baking),
    ]

    /// Where an aimed kill lands: in a phase of the record, or in the one read of the
    /// artifact file that hashes, caches and unpacks it before the serial is consumed
    /// (seen as its directory under `artifacts/tmp`).
    enum Aim {
        case onePass
        case phase(DeploymentPhase)
    }
    /// Each phase in `targets` aimed at once (even trial i aims at `targets[(i / 2) % count]`).
    static let defaultIterations = 2 * targets.count
    static let iterations: Int = {
        guard let text = ProcessInfo.processInfo.environment["BATON_CRASH_TRIALS"] else { return defaultIterations }
        guard let value = Int(text), value > 0 else { fatalError("BATON_CRASH_TRIALS must be a positive number, not '\(text)'") }
        return value
    }()
    /// A trial takes about a second on a quiet 2-core machine and up to four when it is
    /// busy; six per trial leaves room without letting a hang run for ever.
    static let timeLimitMinutes = max(3, (iterations * 6 + 59) / 60)

    @Test(.timeLimit(.minutes(CrashTests.timeLimitMinutes))) func killNineAtRandomMomentsNeverBreaksTheHost() async throws {
        let fixture = try AgentFixture()
        defer { fixture.remove() }
        let batond = ProcessRunner.executable("batond")
        let health = HealthPolicy(
            checks: [.command(.argv(["/bin/sh", "-c", "test -f VERSION"]))], interval: BatonDuration(milliseconds: 100),
            deadline: .seconds(5))
        let hooks = Hooks(
            prepare: Hook(command: .shell("sleep 0.05; echo prepared > PREPARED")),
            activate: Hook(command: .shell("sleep 0.05")))

        var artifacts: [String: AgentFixture.Artifact] = [:]
        func apply(_ release: String) throws -> (envelope: String, artifact: AgentFixture.Artifact) {
            let artifact = try fixture.artifact(release, extraFiles: 150)
            artifacts[release] = artifact
            let envelope = try fixture.envelope(release, artifact: artifact, hooks: hooks, health: health, bake: BatonDuration(milliseconds: 200))
            return (envelope.path, artifact)
        }
        func run(_ envelope: String, _ artifact: String) throws -> ProcessResult {
            try ProcessRunner.run(batond, ["apply", "--config", fixture.configPath, "--envelope", envelope, "--artifact", artifact])
        }

        // A first release, and a measure of how long one deployment takes.
        let first = try apply("r0")
        let started = ContinuousClock.now
        let ok = try run(first.envelope, first.artifact.path)
        #expect(ok.status == 0, "\(ok.stdout)\(ok.stderr)")
        let typical = ContinuousClock.now - started
        let window = Double(typical.components.seconds) + Double(typical.components.attoseconds) / 1e18

        var generator = SystemRandomNumberGenerator()
        var killedInPhases: [String: Int] = [:]
        // Trials after which every check below held: the figure bench/crash-sweep.sh prints.
        var consistentHosts = 0
        var previousLive = "r0"
        for i in 1...Self.iterations {
            let (envelope, artifact) = try apply("r\(i)")
            let process = Process()
            process.executableURL = URL(fileURLWithPath: batond)
            process.arguments = ["apply", "--config", fixture.configPath, "--envelope", envelope, "--artifact", artifact.path]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            // Odd iterations kill at a random moment; even ones aim at a phase, taken in
            // turn, by watching the deployment record, so every phase is hit.
            let target = Self.targets[(i / 2) % Self.targets.count]
            if i % 2 == 1 {
                try await Task.sleep(for: .seconds(Double.random(in: 0...(window * 1.1), using: &generator)))
            } else {
                // The record as the agent serves it: most phases are only in its event log.
                let reader = StateReader(dataDirectory: fixture.dataDirectory)
                let deadline = ContinuousClock.now + .seconds(window * 3)
                while ContinuousClock.now < deadline {
                    let phase = (try? reader.record("web-\(fixture.serial)"))?.phase
                    if let phase, phase.isTerminal { break }
                    switch target {
                    case .phase(let aimed) where phase == aimed: break
                    case .onePass where phase != nil: break
                    case .onePass where fixture.onePassUnpackInProgress(): break
                    default:
                        try await Task.sleep(for: .microseconds(300))
                        continue
                    }
                    break
                }
            }
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()

            // Every fourth time, also kill the reconciliation that follows.
            if i % 4 == 0 {
                let reconcile = Process()
                reconcile.executableURL = URL(fileURLWithPath: batond)
                reconcile.arguments = ["state", "reconcile", "--config", fixture.configPath]
                reconcile.standardOutput = FileHandle.nullDevice
                reconcile.standardError = FileHandle.nullDevice
                try reconcile.run()
                try await Task.sleep(for: .seconds(Double.random(in: 0...(window / 2), using: &generator)))
                kill(reconcile.processIdentifier, SIGKILL)
                reconcile.waitUntilExit()
            }

            // A restart reconciles (`batond status` only reads, so it is asked afterwards).
            let reconciled = try ProcessRunner.run(batond, ["state", "reconcile", "--config", fixture.configPath])
            #expect(reconciled.status == 0, "\(reconciled.stderr)")
            let status = try ProcessRunner.run(batond, ["status", "--config", fixture.configPath, "--json"])
            #expect(status.status == 0, "\(status.stderr)")
            let apps = try BatonJSON.decode(AppList.self, from: Data(status.stdout.utf8)).apps
            let web = try #require(apps.first)
            #expect(web.activeDeploymentID == nil)

            // `current` names a complete release whose every file matches its archive.
            let live = try #require(fixture.current(), "iteration \(i): no current")
            let liveArtifact = try #require(artifacts[live])
            let complete = fixture.currentMatches(liveArtifact)
            #expect(complete, "iteration \(i): \(live) is incomplete")
            #expect(live == "r\(i)" || live == previousLive, "iteration \(i): unexpected live release \(live)")
            let staging = fixture.stagingEntries()
            #expect(staging.isEmpty, "iteration \(i): staging left behind")
            // Dropped trees a kill left in the trash are gone after the restart.
            let trash = fixture.trashEntries()
            #expect(trash.isEmpty, "iteration \(i): the trash holds \(trash)")
            // Nothing half-read is left, and every cached artifact is what its name says.
            let leftovers = fixture.temporaryArtifactEntries()
            #expect(leftovers.isEmpty, "iteration \(i): artifacts/tmp holds \(leftovers)")
            let cacheTruthful = fixture.cachedArtifactsMatchTheirNames()
            #expect(cacheTruthful, "iteration \(i): a cached artifact does not hash to its name")
            // Nothing on disk that the state does not account for.
            let onDisk = Set(fixture.releasesOnDisk())
            #expect(onDisk.isSubset(of: Set(web.releases + [live])))
            let expectedLive = live == "r\(i)" || live == previousLive

            // The record says what happened.
            let id = "web-\(fixture.serial)"
            var truthful = true
            if let record = try StateReader(dataDirectory: fixture.dataDirectory).record(id) {
                #expect(record.phase.isTerminal, "iteration \(i): record left in \(record.phase)")
                truthful = record.phase.isTerminal
                if record.phase == .succeeded {
                    #expect(live == "r\(i)")
                    truthful = truthful && live == "r\(i)"
                } else {
                    #expect(live == previousLive, "iteration \(i): \(record.phase) but \(live) is live")
                    #expect(record.reconciliation != nil || record.error != nil)
                    truthful = truthful && live == previousLive && (record.reconciliation != nil || record.error != nil)
                }
                // The phase the kill interrupted (the last one started), or "finished" if none was.
                let interrupted = record.reconciliation == nil ? "finished" : (record.timings.last?.phase.rawValue ?? "accepted")
                killedInPhases[interrupted, default: 0] += 1
            } else {
                killedInPhases["before-accept", default: 0] += 1
            }

            // The next deployment succeeds.
            let (next, nextArtifact) = try apply("r\(i)-next")
            let result = try run(next, nextArtifact.path)
            #expect(result.status == 0, "iteration \(i): \(result.stdout)\(result.stderr)")
            #expect(fixture.current() == "r\(i)-next")
            previousLive = "r\(i)-next"

            // The same checks as above, folded into one figure for the sweep's report.
            if reconciled.status == 0, status.status == 0, web.activeDeploymentID == nil, complete, expectedLive,
                staging.isEmpty, trash.isEmpty, leftovers.isEmpty, cacheTruthful, onDisk.isSubset(of: Set(web.releases + [live])), truthful,
                result.status == 0, fixture.current() == "r\(i)-next"
            {
                consistentHosts += 1
            }
        }
        print("kill -9 landed in: \(killedInPhases.sorted { $0.key < $1.key })")
        print("crash sweep: \(Self.iterations) trials, \(consistentHosts) hosts consistent after restart")
        // Appends are fsynced whole lines; a kill between a line and audit.head is caught up at start.
        if case .broken(let line, let reason) = AuditVerifier.verify(dataDirectory: fixture.dataDirectory) {
            Issue.record("audit log broken at line \(line): \(reason)")
        }
    }
}
