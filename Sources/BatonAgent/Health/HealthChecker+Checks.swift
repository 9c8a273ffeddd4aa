#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import BatonProtocol

/// What every check of one attempt shares.
struct CheckContext: Sendable {
    var stage: String
    var release: String
    var workingDirectory: String
    var environment: [String: String]
    var timeout: BatonDuration
    /// The agent's host ID, for `{{host}}` in metric queries.
    var host: String = ""
    /// The stage's metric counts; nil for a lone attempt (counted from zero).
    var tally: MetricTally? = nil
}

extension HealthChecker {
    /// Bytes of output kept from a `command` check: enough for its last line.
    static let commandOutputLimit = 4096
    /// A hanging `command` check is killed quickly: it is a probe, not a service.
    static let commandKillGrace = Duration.milliseconds(250)

    /// Runs one check once.
    func run(_ check: HealthCheck, index: Int = 0, _ context: CheckContext) async -> HealthAttempt {
        let time = Date()
        let stopwatch = Stopwatch()
        if case .prometheus(let metric) = check {
            let (passed, detail, measurement) = await measure(metric, index: index, context)
            return HealthAttempt(
                stage: context.stage, release: context.release, check: check.summary, time: time,
                durationMilliseconds: stopwatch.elapsedMilliseconds, passed: passed, detail: detail,
                measurement: measurement)
        }
        let (passed, detail) = await evaluate(check, context)
        return HealthAttempt(
            stage: context.stage, release: context.release, check: check.summary, time: time,
            durationMilliseconds: stopwatch.elapsedMilliseconds, passed: passed, detail: detail)
    }

    private func evaluate(_ check: HealthCheck, _ context: CheckContext) async -> (passed: Bool, detail: String) {
        switch check {
        case .http(let text, let expected, let bodyContains):
            let url: HealthURL
            do {
                url = try HealthURL(parsing: text)
            } catch {
                return (false, "invalid URL: \(error)")
            }
            switch await probe.http(url, readBody: bodyContains != nil, timeout: context.timeout) {
            case .failure(let failure):
                return (false, failure.description)
            case .success(let response):
                guard expected.contains(response.status) else {
                    return (false, "status \(response.status) (expected \(expected))")
                }
                guard let needle = bodyContains else { return (true, "status \(response.status)") }
                guard String(decoding: response.body, as: UTF8.self).contains(needle) else {
                    return (false, "status \(response.status), body lacks \"\(needle)\"")
                }
                return (true, "status \(response.status), body contains \"\(needle)\"")
            }

        case .tcp(let host, let port):
            guard (1...65535).contains(port) else { return (false, "\(port) is not a port") }
            switch await probe.tcp(host: host, port: port, timeout: context.timeout) {
            case .failure(let failure): return (false, failure.description)
            case .success: return (true, "connected")
            }

        case .command(let command):
            let run = await hookRunner.run(
                HookInvocation(
                    hook: HookInvocation.healthHook, release: context.release, command: command,
                    workingDirectory: context.workingDirectory, environment: context.environment,
                    timeout: context.timeout, outputLimit: Self.commandOutputLimit, killGrace: Self.commandKillGrace))
            return (run.succeeded, Self.describe(run, timeout: context.timeout))

        case .prometheus:
            // Measured by `measure`, which counts it (see `run`).
            return (false, "a metric check is measured apart")
        }
    }

    /// `exit 0: ready`, `exit 1: not ready`, `timed out after 2s`, `killed by signal 9`.
    static func describe(_ run: HookRun, timeout: BatonDuration) -> String {
        let outcome: String
        if run.timedOut {
            outcome = "timed out after \(timeout)"
        } else if let status = run.exitStatus {
            outcome = "exit \(status)"
        } else {
            outcome = "killed by signal \(run.signal ?? 0)"
        }
        // A passing check tells on stdout; a failing one usually says why on stderr.
        let streams = run.succeeded ? [run.stdoutTail, run.stderrTail] : [run.stderrTail, run.stdoutTail]
        let line = streams.lazy.compactMap(Self.lastLine).first
        return line.map { "\(outcome): \($0)" } ?? outcome
    }

    private static func lastLine(_ text: String) -> String? {
        guard let line = text.split(whereSeparator: \.isNewline).last(where: { !$0.allSatisfy(\.isWhitespace) }) else {
            return nil
        }
        return String(line.trimmingPrefix(while: \.isWhitespace).prefix(200))
    }
}
