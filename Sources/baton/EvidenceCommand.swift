import ArgumentParser
import BatonCLISupport
import BatonController
import BatonProtocol
import Foundation

/// `baton evidence ROLLOUT_ID` writes a rollout's evidence bundle; `baton evidence verify`
/// checks one offline. The work is in BatonController/Evidence.
struct EvidenceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evidence",
        abstract: "Export a rollout's evidence (signed approvals and agents' signed receipts), or verify a bundle offline.",
        subcommands: [Export.self, Verify.self],
        defaultSubcommand: Export.self)

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "export",
            abstract: "Write one rollout's evidence bundle (JSON; Protocol/evidence.schema.json).",
            discussion: """
                The bundle holds the signed envelope(s) with their approvals as the trust policy counts them, the artifact \
                digest and source, owner and notes, every host's result and signed receipt, the reverts and why, and who ran \
                the rollout and when. Receipts the history lacks are first asked of the hosts that signed them (unless \
                --offline); a host that cannot answer leaves its receipt missing, which `verify` reports. \
                `baton evidence ROLLOUT_ID` is the same as `baton evidence export ROLLOUT_ID`.
                """)

        @Argument(help: "The rollout id (`baton history` lists them).") var rolloutID: String
        @Option(name: [.short, .customLong("out")], help: ArgumentHelp("Where to write it (default: evidence-ROLLOUT_ID.json).", valueName: "file"))
        var out: String?
        @Flag(help: "Use only the history: do not ask hosts for receipts it lacks.") var offline = false
        @OptionGroup var controller: ControllerOptions

        func run() async throws {
            let context = try ControllerContext(controller)
            let history = try context.history()
            if !offline { try await collectMissing(context, history) }
            let policy = try context.policy() ?? TrustPolicy()
            let policyText = context.configuration.trustPolicyPath.flatMap { FileManager.default.contents(atPath: $0) }.map { Array($0) }
            let bundle: EvidenceBundle
            do {
                bundle = try EvidenceExport.bundle(rolloutID: rolloutID, history: history, policy: policy, policyText: policyText)
            } catch {
                throw error.cli
            }
            let path = out ?? "evidence-\(rolloutID).json"
            try OperatorFiles.write(bundle.serialized(), to: path, overwrite: false)
            Output.line("wrote \(path): \(bundle.envelopes.count) envelope(s), \(bundle.receipts.count) receipt(s) from \(bundle.hosts.count) host(s)")
        }

        /// Asks the hosts for the receipts of this rollout the history lacks, and keeps them.
        func collectMissing(_ context: ControllerContext, _ history: any HistoryStore) async throws {
            let missing: [(host: String, deploymentID: String)]
            do { missing = try EvidenceExport.missingReceipts(rolloutID: rolloutID, history: history) } catch { throw error.cli }
            guard !missing.isEmpty, let store = history as? any ReceiptStore else { return }
            let fleet = try context.fleet()
            let hosts = Dictionary(fleet.hosts.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
            let wanted = missing.compactMap { entry in hosts[entry.host].map { (host: $0, deploymentID: entry.deploymentID) } }
            let asked = Array(Set(wanted.map(\.host.id))).sorted().compactMap { hosts[$0] }
            let kept = try await context.withAgentClient(for: asked, retry: .quick) { client in
                await ReceiptSweep.collect(client: client, wanted: wanted, store: store)
            }
            if kept < missing.count {
                Output.error("warning: \(missing.count - kept) receipt(s) of this rollout could not be collected from its hosts; the bundle lacks them")
            }
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify",
            abstract: "Check an evidence bundle offline against the fleet CA and a trust policy.",
            discussion: """
                Checks every envelope's signatures against the trust policy's keys and thresholds, every receipt's signature \
                against its agent's certificate and that certificate against the fleet CA (and that it names the host the \
                receipt is about), that each receipt is for a manifest of the bundle, and that every host deployed or \
                reverted has its receipt. Exit status 0 when verified, 1 when a check failed (each problem with its code), \
                2 when a file cannot be read.
                """)

        @Argument(help: "The bundle (`baton evidence ROLLOUT_ID` wrote it).") var bundle: String
        @Option(help: ArgumentHelp("The fleet CA certificate.", valueName: "ca.pem")) var ca: String
        @Option(help: ArgumentHelp("The trust policy (YAML).", valueName: "trust.yaml")) var trust: String
        @Flag(help: "JSON: one object with the verdict, the approvals, the receipts and the problems.") var json = false

        func run() async throws {
            let bytes = try OperatorFiles.read(bundle, what: "evidence bundle")
            let caPEM = try OperatorFiles.readText(ca, what: "fleet CA certificate")
            let policy: TrustPolicy
            do {
                policy = try TrustPolicyFile.load(trust)
            } catch {
                throw CLIError.reporting(error)
            }
            let report: EvidenceReport
            do {
                report = try EvidenceVerifier.verify(bundle: Array(bytes), caPEM: caPEM, policy: policy)
            } catch {
                throw error.cli
            }
            if json {
                Output.json(report)
            } else {
                for line in report.lines { Output.line(line) }
            }
            if report.verdict != .verified { throw ExitCode(CLIError.Status.failure) }
        }
    }
}
