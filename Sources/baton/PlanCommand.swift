import ArgumentParser
import BatonCLISupport
import BatonController
import BatonProtocol
import Foundation

struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "What a rollout would do, per host, changing nothing: current → target, wave, upload, foreseeable refusals.",
        discussion: "Only reads from the agents. Exit status 1 when some host would refuse or is unreachable. `baton rollout --dry-run` is the same.")

    @Argument(help: "The signed envelope, or APP@RELEASE: a registered release with the approvals it has so far.") var envelope: String
    @Option(help: ArgumentHelp("The artifact file, checked against the manifest's digest.", valueName: "file")) var artifact: String?
    @Option(help: ArgumentHelp("The environment expected (default: the manifest's).", valueName: "env")) var environment: String?
    @OptionGroup var selection: SelectionOptions
    @OptionGroup var strategy: StrategyOptions
    @Flag(help: "JSON: one object per host.") var json = false
    @OptionGroup var controller: ControllerOptions

    func run() async throws {
        let status = try await Self.plan(
            envelope: envelope, artifact: artifact, environment: environment, selection: selection, strategy: try strategy.strategy(),
            json: json, controller: controller)
        throw ExitCode(status)
    }

    /// `fetch`: `baton rollout --fetch --dry-run`; nothing would be uploaded.
    static func plan(envelope path: String, artifact: String?, environment: String?, selection: SelectionOptions,
                     strategy: RolloutStrategy, json: Bool, controller: ControllerOptions, fetch: Bool = false) async throws -> Int32 {
        let context = try ControllerContext(controller)
        // `APP@RELEASE`: the registered release with the approvals it has so far; the plan
        // shows per host whether they are enough.
        let bytes = try ReleaseApprovals.looksLikeReference(path)
            ? Data(try context.registeredEnvelope(path, environment: environment))
            : OperatorFiles.read(path, what: "envelope")
        let policy = try context.policy()
        let checked: RolloutPreflight.Checked
        do {
            // The signature check is per host below (a return to an earlier release needs
            // fewer signatures), so the preflight leaves it out.
            var input = RolloutPreflight.Input(
                envelope: Array(bytes), envelopeFile: path, fleet: try context.fleet(), environment: environment,
                hostIDs: selection.hostIDs, selector: try selection.labels(), artifactFile: artifact, policy: nil)
            input.fetch = fetch
            checked = try RolloutPreflight.check(input, state: context.state)
        } catch {
            throw cliError(error)
        }
        let planned = try await context.withAgentClient(for: checked.hosts, retry: .quick) { client in
            await RolloutPlanner.plan(
                envelope: Array(bytes), manifest: checked.manifest, hosts: checked.hosts, strategy: strategy, policy: policy, client: client)
        }
        if json {
            let freeze = RolloutPlanner.freeze(envelope: Array(bytes), manifest: checked.manifest, policy: policy)
            for var host in planned {
                host.freeze = freeze
                // Without a file to send, an agent that lacks the artifact fetches artifact.url.
                if checked.artifactFile == nil, host.upload == true { (host.upload, host.fetch) = (false, true) }
                Output.json(host)
            }
        } else {
            let m = checked.manifest
            Output.line("plan: \(m.app) \(m.release) (serial \(m.serial)) to \(planned.count) host(s) in \(m.environment); \(strategy.summary)\(policy == nil ? "; no trust policy configured, signatures not checked" : "")")
            for line in RolloutPlanner.freezeNotice(envelope: Array(bytes), manifest: m, policy: policy) { Output.line(line) }
            Output.line("HOST         CURRENT → TARGET                 WAVE       UPLOAD  ACTION")
            for host in planned {
                let change = "\(host.current ?? "(none)") → \(host.target)"
                // Without a file to send, an agent that lacks the artifact fetches artifact.url.
                let upload = host.upload.map { $0 ? (checked.artifactFile == nil ? "fetch" : "yes") : "no" } ?? "?"
                let action = host.action + (host.error.map { ": \($0.code): \($0.message)" } ?? "")
                Output.line("\(pad(host.host, 12)) \(pad(change, 32)) \(pad(host.wave ?? "-", 10)) \(pad(upload, 7)) \(action)")
            }
            Output.line("nothing was changed")
        }
        return planned.allSatisfy { $0.action == "deploy" || $0.action == "already" } ? 0 : 1
    }
}
