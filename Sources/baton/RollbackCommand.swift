import ArgumentParser
import BatonCLISupport
import BatonController
import BatonProtocol
import Foundation

struct RollbackCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback",
        abstract: "Put every host of an environment back on its previous (or a named) release, at once.",
        discussion: """
            Signed by the controller's signing key alone: the agents accept a return to a release \
            that ran successfully there under the environment's rollbackThreshold. Each host is \
            health-checked with that release's approved checks; recorded as a rollout in the \
            history. Exit statuses as for `baton rollout`.
            """)

    @Argument(help: "The app.") var app: String
    @Option(help: ArgumentHelp("The environment.", valueName: "env")) var environment: String
    @Option(help: ArgumentHelp("The release to go back to (default: each host's previous one).", valueName: "release")) var to: String?
    @OptionGroup var selection: SelectionOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var controller: ControllerOptions

    func run() async throws {
        try checkNames((app, "app"), (environment, "environment"), (to, "release"))
        let context = try ControllerContext(controller)
        let fleet = try context.fleet()
        let hosts = try selection.hosts(in: fleet, environment: environment)
        guard let key = try context.revertKey() else {
            throw CLIError(code: "signing_failed", message: "no controller signing key: set signingKey in baton.yaml, BATON_SIGNING_KEY or --signing-key")
        }
        if let policy = try context.policy(), let env = policy.environments[environment] {
            guard env.keys.contains(where: { policy.keys[$0]?.keyid == key.keyid }) else {
                throw CLIError(code: "untrusted_key", message: "the controller's signing key (keyid \(key.keyid)) is not trusted for \(environment) in the trust policy; agents would refuse the rollback")
            }
            guard env.rollbackThreshold <= 1 else {
                throw CLIError(code: "threshold_not_met", message: "\(environment) needs \(env.rollbackThreshold) signatures for a rollback; sign a rollback manifest with `baton manifest sign` by that many approvers and roll it out instead")
            }
        }
        let client = try context.client(for: hosts, retry: .quick)
        var statuses: [String: AppStatus] = [:]
        var unreachable: [(String, ErrorInfo)] = []
        await withTaskGroup(of: (String, Result<AppStatus?, AgentCallError>).self) { group in
            for host in hosts {
                group.addTask { (host.id, await client.appStatusResult(host, app: app)) }
            }
            for await (id, result) in group {
                switch result {
                case .success(let status): if let status { statuses[id] = status }
                case .failure(let error): unreachable.append((id, error.info))
                }
            }
        }
        await client.shutdown()
        let plan = RollbackPlan.make(
            app: app, environment: environment, to: to, hosts: hosts.filter { host in !unreachable.contains { $0.0 == host.id } },
            statuses: statuses, controllerSerial: context.state.lastSerial(app: app), key: key)
        for (host, error) in unreachable { Output.error("warning: \(host) is unreachable (\(error.code)); it is not rolled back") }
        for (host, error) in plan.refused { Output.error("warning: \(host): \(error.code): \(error.message)") }
        guard !plan.groups.isEmpty else {
            throw CLIError(code: "nothing_to_roll_back", message: "no host of \(environment) can be rolled back\(to.map { " to \($0)" } ?? "")", exitCode: CLIError.Status.failure)
        }
        var worst: Int32 = 0
        for group in plan.groups {
            var strategy = RolloutStrategy()
            strategy.failureThreshold = .percent(100)
            strategy.autoRevert = false
            let request = RolloutRequest(
                rolloutID: RolloutRequest.newID(app: app), envelope: group.envelope, manifest: group.manifest, hosts: group.hosts,
                strategy: strategy, artifactFile: nil, revertKey: nil)
            let status = try await RolloutExecution.run(request, context: context, output: output, signers: ["controller:\(key.keyid.prefix(12))"])
            worst = max(worst, status)
        }
        if !unreachable.isEmpty || !plan.refused.isEmpty { worst = max(worst, 3) }
        throw ExitCode(worst)
    }
}
