import ArgumentParser
import BatonCLISupport
import BatonController
import BatonProtocol
import Foundation

/// `baton check`: everything the controller reads, checked before a rollout needs it.
struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check baton.yaml, the fleet, every app file, the trust policy, the signing key and the TLS credentials without contacting any agent.",
        discussion: """
            One line per check. With --reach, also asks every host once (its health, audit chain and certificate). \
            Exit status 0 when every check passed; 1 when one failed (each failure gives its code and what to do); \
            certificates that expire within 30 days are failures too.
            """)

    @Flag(help: "Also ask every host of the fleet once.") var reach = false
    @Flag(help: "JSON: one object, {ok, checks: [{ok, line}]}.") var json = false
    @OptionGroup var controller: ControllerOptions

    /// `--json`: `{ok, checks: [{ok, line}]}`.
    struct Outcome: Encodable {
        var ok: Bool
        var line: String
    }

    struct Report: Encodable {
        var ok: Bool
        var checks: [Outcome]
    }

    func run() async throws {
        let context = try ControllerContext(controller)
        let report = ConfigurationCheck.run(ControllerFiles(context.configuration))
        var outcomes = report.outcomes.map { outcome in
            Outcome(ok: outcome.ok, line: outcome.error.map { "FAIL  \(outcome.what): \($0.code): \($0.message)" } ?? "ok    \(outcome.what): \(outcome.detail ?? "")")
        }
        if reach, let fleet = report.fleet, report.credentialsReady {
            let hosts = try await context.withAgentClient(for: fleet.hosts, retry: .quick) { client in
                await FleetReach.check(client: client, hosts: fleet.hosts)
            }
            for host in hosts {
                let agent = "agent \(host.agentVersion ?? "?"), certificate valid \(host.certificateDaysLeft.map(String.init) ?? "?") more day(s)"
                let line = host.error.map { "FAIL  host \(host.host): \($0.code): \($0.message)" }
                    ?? (host.ok ? "ok    host \(host.host): \(agent)" : "FAIL  host \(host.host): \(host.problems.joined(separator: "; "))")
                outcomes.append(Outcome(ok: host.ok, line: line))
            }
        }
        if json {
            Output.json(Report(ok: !outcomes.contains { !$0.ok }, checks: outcomes))
        } else {
            for outcome in outcomes { Output.line(outcome.line) }
        }
        if outcomes.contains(where: { !$0.ok }) { throw ExitCode(1) }
    }
}
