import ArgumentParser
import BatonCLISupport
import BatonController
import BatonProtocol
import Foundation

/// `baton logs HOST APP [DEPLOYMENT]`: one deployment's events and hook output, from the
/// agent's record (by default the app's last deployment on that host).
struct LogsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs",
        abstract: "A deployment's events and the output of its hooks, as the host's agent recorded them.",
        discussion: "Without DEPLOYMENT, the app's last deployment on the host. Exit status 1 when the host cannot be asked or has no such deployment.")

    @Argument(help: "The host id.") var host: String
    @Argument(help: "The app.") var app: String
    @Argument(help: "A deployment id (APP-SERIAL); default: the app's last one.") var deployment: String?
    @Flag(help: "JSON: the whole deployment record.") var json = false
    @OptionGroup var controller: ControllerOptions

    func run() async throws {
        try checkNames((app, "app"), (host, "host"))
        let context = try ControllerContext(controller)
        let fleet = try context.fleet()
        guard let target = fleet.hosts.first(where: { $0.id == host }) else {
            throw CLIError(code: "unknown_host", message: "the fleet has no host '\(host)'")
        }
        let deployment = self.deployment
        let record: DeploymentRecord?
        do {
            record = try await context.withAgentClient(for: [target], retry: .quick) { client in
                try await DeploymentLog.record(client: client, host: target, app: app, deployment: deployment)
            }
        } catch let error as AgentCallError {
            throw CLIError(code: error.info.code, message: "\(host): \(error.info.message)", exitCode: CLIError.Status.failure)
        }
        guard let record else {
            throw CLIError(code: "not_found", message: "\(host) has no deployment of \(app)", exitCode: CLIError.Status.failure)
        }
        if json {
            Output.line(String(decoding: try BatonJSON.encode(record), as: UTF8.self))
            return
        }
        Output.line("\(record.id) on \(record.hostID): \(record.app) \(record.release) (serial \(record.serial)), \(record.phase.rawValue)"
            + (record.error.map { ": \($0.code): \($0.message)" } ?? ""))
        for event in record.events {
            Output.line("\(RFC3339.format(event.time))  \(pad(event.phase.rawValue, 12)) \(event.message)")
        }
        for run in record.hooks {
            let ending = run.timedOut ? "timed out" : run.exitStatus.map { "exit \($0)" } ?? run.signal.map { "signal \($0)" } ?? "?"
            Output.line("")
            Output.line("== \(run.hook) hook of \(run.release) (\(ending), \(run.durationMilliseconds) ms): \(run.command.joined(separator: " "))")
            if !run.stdoutTail.isEmpty { Output.line("-- stdout\n" + run.stdoutTail.trimmingCharacters(in: .newlines)) }
            if !run.stderrTail.isEmpty { Output.line("-- stderr\n" + run.stderrTail.trimmingCharacters(in: .newlines)) }
        }
    }
}
