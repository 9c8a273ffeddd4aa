import BatonAgent
import BatonProtocol
import BatonTestSupport
import Foundation
import Logging
import Testing

/// Hooks run as real processes: environment, working directory, output tails, exit
/// statuses, timeouts that take the whole process group down, background services that
/// must survive, commands that cannot be started.
@Suite struct HookRunnerTests {
    let runner = HookRunner(logger: Logger(label: "test.hooks"), killGrace: .milliseconds(200))

    private func invocation(
        _ command: Command, in directory: String, environment: [String: String] = [:],
        timeout: BatonDuration = .seconds(10), outputLimit: Int = 64 << 10
    ) -> HookInvocation {
        HookInvocation(
            hook: "prepare", release: "r1", command: command, workingDirectory: directory,
            environment: environment, timeout: timeout, outputLimit: outputLimit)
    }

    @Test func environmentAndWorkingDirectoryAreAsSpecified() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let release = dir.child("release")
        try FileManager.default.createDirectory(atPath: release, withIntermediateDirectories: true)
        let environment = [
            "BATON_APP": "web", "BATON_RELEASE": "r1", "BATON_RELEASE_DIR": release,
            "BATON_PREVIOUS_RELEASE_DIR": "", "BATON_PHASE": "prepare",
        ]
        // argv without a slash: found through PATH.
        let run = await runner.run(
            invocation(.argv(["sh", "-c", "pwd -P > seen; env >> seen"]), in: release, environment: environment))
        #expect(run.succeeded)
        #expect(run.command == ["sh", "-c", "pwd -P > seen; env >> seen"])

        let lines = try String(contentsOfFile: "\(release)/seen", encoding: .utf8).split(separator: "\n").map(String.init)
        let expectedDirectory = URL(fileURLWithPath: release).resolvingSymlinksInPath().path
        #expect(lines.first == expectedDirectory)
        var seen: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let equals = line.firstIndex(of: "=") else { continue }
            seen[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        for (key, value) in environment { #expect(seen[key] == value, "\(key)") }
        #expect(seen["LANG"] == "C.UTF-8")
        #expect(!(seen["PATH"] ?? "").isEmpty)
        #expect(!(seen["HOME"] ?? "").isEmpty)
        // Nothing else of the agent's environment: only what the shell adds itself.
        let allowed = Set(environment.keys).union(["PATH", "HOME", "LANG", "PWD", "OLDPWD", "SHLVL", "_"])
        #expect(Set(seen.keys).subtracting(allowed).isEmpty, "unexpected: \(Set(seen.keys).subtracting(allowed))")
    }

    @Test func exitStatusAndOutputTails() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let script = """
            i=0; while [ $i -lt 3000 ]; do echo "line $i"; i=$((i+1)); done
            echo last-out
            head -c 5000 /dev/zero | tr '\\0' e >&2
            echo last-err >&2
            exit 3
            """
        let run = await runner.run(invocation(.shell(script), in: dir.path, outputLimit: 100))
        #expect(run.exitStatus == 3)
        #expect(run.signal == nil)
        #expect(!run.timedOut)
        #expect(!run.succeeded)
        #expect(run.stdoutTail.utf8.count == 100)
        #expect(run.stdoutTail.hasSuffix("line 2999\nlast-out\n"))
        #expect(run.stderrTail == String(repeating: "e", count: 91) + "last-err\n")
        #expect(run.hook == "prepare")
        #expect(run.release == "r1")
    }

    @Test func tailCutInsideACharacterDropsItsRemains() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        // Ten bytes of "é" (C3 A9); the last five start with a continuation byte.
        let run = await runner.run(invocation(.shell("printf 'ééééé'"), in: dir.path, outputLimit: 5))
        #expect(run.stdoutTail == "éé")
    }

    @Test func hangingHookIsKilledAtItsTimeoutWithItsChildren() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        // A child shell that ignores SIGTERM (and so do its children): only the SIGKILL
        // sent to the whole group after the grace ends them.
        let script = """
            sh -c 'trap "" TERM; sleep 300 & echo $! >> pids; echo $$ >> pids; sleep 300' &
            sleep 300 &
            echo $! >> pids
            echo $$ >> pids
            wait
            """
        let started = ContinuousClock.now
        let run = await runner.run(invocation(.shell(script), in: dir.path, timeout: BatonDuration(milliseconds: 800)))
        let elapsed = ContinuousClock.now - started
        #expect(run.timedOut)
        #expect(run.signal == SIGTERM)
        #expect(run.exitStatus == nil)
        #expect(!run.succeeded)
        #expect(elapsed >= .milliseconds(800))
        #expect(elapsed < .seconds(3))

        let pids = try String(contentsOfFile: dir.child("pids"), encoding: .utf8)
            .split(separator: "\n").compactMap { pid_t($0) }
        #expect(pids.count == 4)
        for pid in pids {
            #expect(await ProcessProbe.isGone(pid), "process \(pid) of the hook's group survived")
        }
    }

    @Test func mainProcessIgnoringSIGTERMIsKilledAfterTheGrace() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let run = await runner.run(
            invocation(.shell("trap '' TERM; echo $$ > pid; sleep 300"), in: dir.path, timeout: BatonDuration(milliseconds: 300)))
        #expect(run.timedOut)
        #expect(run.signal == SIGKILL)
        #expect(run.durationMilliseconds >= 500)  // the timeout plus the 200 ms grace
        let pid = try #require(pid_t(String(contentsOfFile: dir.child("pid"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(await ProcessProbe.isGone(pid))
    }

    @Test func backgroundProcessStartedByTheHookSurvivesAndDoesNotBlock() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        // The background process keeps the hook's stdout and stderr open: with pipes the
        // run would last as long as it does.
        let started = ContinuousClock.now
        let run = await runner.run(
            invocation(.shell("sleep 300 & echo $! > service.pid; echo started"), in: dir.path, timeout: .seconds(20)))
        let elapsed = ContinuousClock.now - started
        let pid = try #require(
            pid_t(String(contentsOfFile: dir.child("service.pid"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        defer { kill(pid, SIGKILL) }
        #expect(run.succeeded)
        #expect(run.stdoutTail == "started\n")
        #expect(elapsed < .seconds(2))
        try await Task.sleep(for: .milliseconds(100))
        #expect(ProcessProbe.isRunning(pid))
    }

    @Test func commandThatCannotBeFoundExitsWith127() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let run = await runner.run(invocation(.argv(["baton-no-such-command-7f3a"]), in: dir.path))
        #expect(run.exitStatus == 127)
        #expect(!run.succeeded)
        #expect(run.stderrTail.contains("cannot run baton-no-such-command-7f3a: No such file or directory"))

        let relative = await runner.run(invocation(.argv(["./bin/missing"]), in: dir.path))
        #expect(relative.exitStatus == 127)
        #expect(relative.stderrTail.contains("No such file or directory"))
    }

    @Test func commandThatIsNotExecutableExitsWith127() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try "#!/bin/sh\necho hi\n".write(toFile: dir.child("tool"), atomically: false, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: dir.child("tool"))
        let run = await runner.run(invocation(.argv(["./tool"]), in: dir.path))
        #expect(run.exitStatus == 127)
        #expect(run.stderrTail.contains("Permission denied"))
    }

    @Test func missingWorkingDirectoryExitsWith127() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let run = await runner.run(invocation(.argv(["true"]), in: dir.child("absent")))
        #expect(run.exitStatus == 127)
        #expect(run.stderrTail.contains("is not a directory"))
    }

    @Test func relativeExecutableResolvesAgainstTheWorkingDirectory() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try FileManager.default.createDirectory(atPath: dir.child("bin"), withIntermediateDirectories: true)
        try "#!/bin/sh\necho \"restarted $1\"\n".write(toFile: dir.child("bin/restart"), atomically: false, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir.child("bin/restart"))
        let run = await runner.run(invocation(.argv(["./bin/restart", "web"]), in: dir.path))
        #expect(run.succeeded)
        #expect(run.stdoutTail == "restarted web\n")
    }

    @Test func agentDescriptorsAreNotInherited() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        // Opened without O_CLOEXEC on purpose.
        let leaked = open("/dev/null", O_RDONLY)
        try #require(leaked >= 0)
        defer { close(leaked) }
        let run = await runner.run(
            invocation(.shell("if [ -e /proc/$$/fd/\(leaked) ]; then echo leaked; else echo clean; fi"), in: dir.path))
        #expect(run.stdoutTail == "clean\n")
    }

    @Test func cancellationTerminatesTheProcessGroup() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let runner = self.runner
        let hook = invocation(.shell("echo $$ > pid; sleep 300"), in: dir.path, timeout: .seconds(60))
        let task = Task { await runner.run(hook) }
        try await Task.sleep(for: .milliseconds(300))
        task.cancel()
        let run = await task.value
        #expect(!run.timedOut)
        #expect(run.signal == SIGTERM)
        #expect(run.durationMilliseconds < 3000)
        #expect(run.stderrTail.contains("cancelled"))
        let pid = try #require(pid_t(String(contentsOfFile: dir.child("pid"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(await ProcessProbe.isGone(pid))
    }
}

/// Whether a process of a test still exists, by pid.
private enum ProcessProbe {
    /// Alive and not a zombie (a killed orphan may wait a moment for init to reap it).
    static func isRunning(_ pid: pid_t) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first
        return state != "Z" && state != "X"
    }

    /// Waits up to `timeout` for the process to be gone.
    static func isGone(_ pid: pid_t, within timeout: Duration = .seconds(2)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if !isRunning(pid) { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return !isRunning(pid)
    }
}
