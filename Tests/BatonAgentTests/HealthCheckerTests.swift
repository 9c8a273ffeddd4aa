@testable import BatonAgent
import BatonProtocol
import BatonTestSupport
import Foundation
import Logging
import Testing

/// Health checks against real sockets on 127.0.0.1 and real processes.
@Suite struct HealthCheckerTests {
    let checker = HealthChecker(
        hookRunner: HookRunner(logger: Logger(label: "test.health"), killGrace: .milliseconds(200)),
        logger: Logger(label: "test.health"))

    private func policy(
        _ checks: [HealthCheck], timeout: BatonDuration = BatonDuration(milliseconds: 500), interval: BatonDuration = BatonDuration(milliseconds: 100),
        deadline: BatonDuration = .seconds(5)
    ) -> HealthPolicy {
        HealthPolicy(checks: checks, timeout: timeout, interval: interval, deadline: deadline)
    }

    private func attemptOne(_ check: HealthCheck, timeout: BatonDuration = BatonDuration(milliseconds: 500)) async throws -> HealthAttempt {
        let attempts = await checker.attempt(
            policy([check], timeout: timeout), stage: "checking", release: "r1", workingDirectory: "/tmp",
            environment: ["BATON_PHASE": "checking"])
        try #require(attempts.count == 1)
        return attempts[0]
    }

    // MARK: http

    @Test func httpPassesOnSuccessWithTheBodySubstring() async throws {
        let server = try LoopbackServer(behavior: .respond(status: 200, body: "{\"status\":\"ok\"}"))
        defer { server.stop() }
        let attempt = try await attemptOne(
            .http(url: "http://127.0.0.1:\(server.port)/health?verbose=1", expectStatus: .success, bodyContains: "\"ok\""))
        #expect(attempt.passed, "\(attempt.detail)")
        #expect(attempt.detail == "status 200, body contains \"\"ok\"\"")
        #expect(attempt.stage == "checking")
        #expect(attempt.release == "r1")
        #expect(attempt.check == "http http://127.0.0.1:\(server.port)/health?verbose=1 expecting 200-299")
        #expect(attempt.durationMilliseconds < 500)
        #expect(abs(attempt.time.timeIntervalSinceNow) < 5)
    }

    @Test func httpFailsOnAStatusOutsideTheRange() async throws {
        let server = try LoopbackServer(behavior: .respond(status: 503, body: "ok"))
        defer { server.stop() }
        let attempt = try await attemptOne(.http(url: "http://127.0.0.1:\(server.port)/", expectStatus: .success, bodyContains: nil))
        #expect(!attempt.passed)
        #expect(attempt.detail == "status 503 (expected 200-299)")

        let accepted = try await attemptOne(
            .http(url: "http://127.0.0.1:\(server.port)", expectStatus: StatusRange(500, 503), bodyContains: nil))
        #expect(accepted.passed)
    }

    @Test func httpFailsWhenTheBodyLacksTheSubstring() async throws {
        let server = try LoopbackServer(behavior: .respond(status: 200, body: "starting"))
        defer { server.stop() }
        let attempt = try await attemptOne(
            .http(url: "http://127.0.0.1:\(server.port)/", expectStatus: .success, bodyContains: "ok"))
        #expect(!attempt.passed)
        #expect(attempt.detail == "status 200, body lacks \"ok\"")
    }

    @Test func httpLooksForTheSubstringInTheFirst64KiBOnly() async throws {
        let padding = String(repeating: "x", count: 70_000)
        let server = try LoopbackServer(behavior: .respond(status: 200, body: "ready" + padding + "late"))
        defer { server.stop() }
        let url = "http://127.0.0.1:\(server.port)/"
        #expect(try await attemptOne(.http(url: url, expectStatus: .success, bodyContains: "ready")).passed)
        let late = try await attemptOne(.http(url: url, expectStatus: .success, bodyContains: "late"))
        #expect(!late.passed)
        #expect(late.detail == "status 200, body lacks \"late\"")
    }

    @Test func httpFailsWithConnectionRefusedOnAClosedPort() async throws {
        let port = try LoopbackServer.closedPort()
        let attempt = try await attemptOne(.http(url: "http://127.0.0.1:\(port)/", expectStatus: .success, bodyContains: nil))
        #expect(!attempt.passed)
        #expect(attempt.detail == "connection refused")
    }

    @Test func httpTimesOutAgainstAServerThatNeverAnswers() async throws {
        let server = try LoopbackServer(behavior: .hang)
        defer { server.stop() }
        let attempt = try await attemptOne(
            .http(url: "http://127.0.0.1:\(server.port)/", expectStatus: .success, bodyContains: nil), timeout: BatonDuration(milliseconds: 300))
        #expect(!attempt.passed)
        #expect(attempt.detail == "timed out after 300ms")
        #expect(attempt.durationMilliseconds >= 290)
        #expect(attempt.durationMilliseconds < 1500)
    }

    @Test func httpRejectsAnInvalidURL() async throws {
        let attempt = try await attemptOne(.http(url: "https://127.0.0.1/", expectStatus: .success, bodyContains: nil))
        #expect(!attempt.passed)
        #expect(attempt.detail == "invalid URL: only http:// URLs are supported")
    }

    @Test func urlParsing() throws {
        #expect(try HealthURL(parsing: "http://127.0.0.1:8080/health?x=1#f") == HealthURL(host: "127.0.0.1", port: 8080, target: "/health?x=1"))
        #expect(try HealthURL(parsing: "http://localhost") == HealthURL(host: "localhost", port: 80, target: "/"))
        #expect(try HealthURL(parsing: "http://localhost?ready") == HealthURL(host: "localhost", port: 80, target: "/?ready"))
        let v6 = try HealthURL(parsing: "http://[::1]:9000/ping")
        #expect(v6 == HealthURL(host: "::1", port: 9000, target: "/ping"))
        #expect(v6.hostHeader == "[::1]:9000")
        #expect(try HealthURL(parsing: "HTTP://example.test:80/").hostHeader == "example.test")
        for bad in [
            "https://a/", "http://", "http://:80/", "http://a:0/", "http://a:65536/", "http://a:+80/", "http://a:x/",
            "http://::1/", "http://[::1/", "http://[nothex]/", "http://u@a/", "http://a/ b", "http://a/\r\nX: y",
        ] {
            #expect(throws: HealthURL.ParseError.self, "\(bad)") { try HealthURL(parsing: bad) }
        }
    }

    // MARK: tcp

    @Test func tcpPassesWhenSomethingListensAndFailsWhenNothingDoes() async throws {
        let server = try LoopbackServer()
        defer { server.stop() }
        let up = try await attemptOne(.tcp(host: "127.0.0.1", port: server.port))
        #expect(up.passed)
        #expect(up.detail == "connected")

        let down = try await attemptOne(.tcp(host: "127.0.0.1", port: try LoopbackServer.closedPort()))
        #expect(!down.passed)
        #expect(down.detail == "connection refused")
    }

    // MARK: command

    @Test func commandPassesOnExitZeroAndFailsOtherwise() async throws {
        let passing = try await attemptOne(.command(.shell("echo starting; echo \"ready in $BATON_PHASE\"")))
        #expect(passing.passed)
        #expect(passing.detail == "exit 0: ready in checking")

        let failing = try await attemptOne(.command(.shell("echo progress; echo 'not ready' >&2; exit 2")))
        #expect(!failing.passed)
        #expect(failing.detail == "exit 2: not ready")

        let hanging = try await attemptOne(.command(.argv(["sleep", "30"])), timeout: BatonDuration(milliseconds: 300))
        #expect(!hanging.passed)
        #expect(hanging.detail == "timed out after 300ms")
        #expect(hanging.durationMilliseconds < 1500)
    }

    @Test func anAttemptPassesOnlyWhenEveryCheckPasses() async throws {
        let server = try LoopbackServer()
        defer { server.stop() }
        let attempts = await checker.attempt(
            policy([.tcp(host: "127.0.0.1", port: server.port), .command(.shell("exit 1")), .command(.argv(["true"]))]),
            stage: "checking", release: "r1", workingDirectory: "/tmp", environment: [:])
        #expect(attempts.map(\.passed) == [true, false, true])
        // The program by its name, not its path: "/bin/sh" is shown as "sh".
        #expect(attempts.map(\.check) == ["tcp 127.0.0.1:\(server.port)", "command sh -c exit 1", "command true"])
    }

    // MARK: waiting and baking

    @Test func waitUntilHealthySucceedsWhenTheServerComesUpLate() async throws {
        // Bound but not listening: refused until it starts, and the port stays ours.
        let server = try LoopbackServer(listening: false)
        defer { server.stop() }
        let starter = Task {
            try await Task.sleep(for: .milliseconds(500))
            server.startListening()
        }
        defer { starter.cancel() }
        let log = AttemptLog()
        let started = ContinuousClock.now
        let healthy = await checker.waitUntilHealthy(
            policy([.http(url: "http://127.0.0.1:\(server.port)/", expectStatus: .success, bodyContains: "ok")]),
            stage: "checking", release: "r1", workingDirectory: "/tmp", environment: [:],
            onAttempt: { await log.add($0) })
        #expect(healthy)
        #expect(ContinuousClock.now - started < .seconds(2))
        let attempts = await log.attempts
        #expect(attempts.count >= 3)
        #expect(attempts.first?.detail == "connection refused")
        #expect(attempts.last?.passed == true)
        #expect(attempts.dropLast().allSatisfy { !$0.passed })
    }

    /// A checker whose intervals, deadline and bake run on `clock`.
    private func checker(on clock: VirtualClock) -> HealthChecker {
        HealthChecker(
            hookRunner: HookRunner(logger: Logger(label: "test.health"), killGrace: .milliseconds(200)),
            logger: Logger(label: "test.health"), clock: clock)
    }

    @Test func waitUntilHealthyFailsAtTheDeadline() async throws {
        let port = try LoopbackServer.closedPort()
        let clock = VirtualClock()
        let log = AttemptLog()
        let healthy = await checker(on: clock).waitUntilHealthy(
            policy([.tcp(host: "127.0.0.1", port: port)], interval: BatonDuration(milliseconds: 150), deadline: BatonDuration(milliseconds: 700)),
            stage: "checking", release: "r1", workingDirectory: "/tmp", environment: [:],
            onAttempt: { await log.add($0) })
        #expect(!healthy)
        #expect(clock.elapsed == .milliseconds(700))
        // At 0, 150, 300, 450 and 600 ms, and a last one at the deadline, not after it.
        #expect(clock.sleeps.map(\.offset) == [150, 300, 450, 600, 700].map { .milliseconds($0) })
        let attempts = await log.attempts
        #expect(attempts.count == 6)
        #expect(attempts.allSatisfy { !$0.passed && $0.detail == "connection refused" })
    }

    @Test func aLongDeadlineIsKeptWithoutWaitingItOut() async throws {
        let port = try LoopbackServer.closedPort()
        let clock = VirtualClock()
        let log = AttemptLog()
        let started = ContinuousClock.now
        let healthy = await checker(on: clock).waitUntilHealthy(
            policy([.tcp(host: "127.0.0.1", port: port)], interval: .seconds(5), deadline: .seconds(300)),
            stage: "checking", release: "r1", workingDirectory: "/tmp", environment: [:],
            onAttempt: { await log.add($0) })
        #expect(!healthy)
        #expect(clock.elapsed == .seconds(300))
        // Every 5 s from 0 to 300 s inclusive.
        #expect(await log.attempts.count == 61)
        #expect(ContinuousClock.now - started < .seconds(30))
    }

    @Test func watchFailsWhenTheServerStartsFailingMidBake() async throws {
        let server = try LoopbackServer(behavior: .respond(status: 200, body: "ok"))
        defer { server.stop() }
        let clock = VirtualClock()
        let log = AttemptLog()
        let baked = await checker(on: clock).watch(
            policy([.http(url: "http://127.0.0.1:\(server.port)/", expectStatus: .success, bodyContains: nil)]),
            for: .seconds(600), stage: "baking", release: "r1", workingDirectory: "/tmp", environment: [:],
            onAttempt: { attempts in
                // The service starts failing after its third attempt.
                if await log.add(attempts) == 3 { server.behavior = .respond(status: 503, body: "overloaded") }
            })
        #expect(!baked)
        // The bake ends at the first failed attempt (the fourth, at 400 ms), not after ten minutes.
        #expect(clock.elapsed == .milliseconds(400))
        let attempts = await log.attempts
        #expect(attempts.count == 4)
        #expect(attempts.dropLast().allSatisfy { $0.passed })
        #expect(attempts.last?.detail == "status 503 (expected 200-299)")
        #expect(attempts.allSatisfy { $0.stage == "baking" })
    }

    @Test func watchSucceedsWhenEveryAttemptPassesForTheDuration() async throws {
        let server = try LoopbackServer()
        defer { server.stop() }
        let clock = VirtualClock()
        let log = AttemptLog()
        let baked = await checker(on: clock).watch(
            policy([.tcp(host: "127.0.0.1", port: server.port)]), for: BatonDuration(milliseconds: 500), stage: "baking", release: "r1",
            workingDirectory: "/tmp", environment: [:], onAttempt: { await log.add($0) })
        #expect(baked)
        #expect(clock.elapsed == .milliseconds(500))
        // At 100, 200, 300, 400 and 500 ms: none at the start (a passing attempt precedes baking).
        #expect(clock.sleeps.map(\.offset) == [100, 200, 300, 400, 500].map { .milliseconds($0) })
        #expect(await log.attempts.count == 5)
    }

    /// The real clock: a bake that passes takes its time, no less.
    @Test func watchOnTheRealClockTakesTheWholeDuration() async throws {
        let server = try LoopbackServer()
        defer { server.stop() }
        let log = AttemptLog()
        let started = ContinuousClock.now
        let baked = await checker.watch(
            policy([.tcp(host: "127.0.0.1", port: server.port)]), for: BatonDuration(milliseconds: 300), stage: "baking", release: "r1",
            workingDirectory: "/tmp", environment: [:], onAttempt: { await log.add($0) })
        let elapsed = ContinuousClock.now - started
        #expect(baked)
        #expect(elapsed >= .milliseconds(300))
        #expect(elapsed < .milliseconds(1500))
        #expect(await log.attempts.count == 3)
    }

    @Test func watchStopsWhenCancelled() async throws {
        let server = try LoopbackServer()
        defer { server.stop() }
        let checker = self.checker
        let policy = policy([.tcp(host: "127.0.0.1", port: server.port)])
        let task = Task {
            await checker.watch(
                policy, for: .seconds(60), stage: "baking", release: "r1", workingDirectory: "/tmp", environment: [:],
                onAttempt: { _ in })
        }
        try await Task.sleep(for: .milliseconds(250))
        let started = ContinuousClock.now
        task.cancel()
        #expect(await task.value == false)
        #expect(ContinuousClock.now - started < .milliseconds(500))
    }
}

/// Collects what `onAttempt` reports.
private actor AttemptLog {
    private(set) var attempts: [HealthAttempt] = []
    private(set) var batches = 0

    /// Returns how many batches were reported, this one included.
    @discardableResult
    func add(_ batch: [HealthAttempt]) -> Int {
        attempts += batch
        batches += 1
        return batches
    }
}
