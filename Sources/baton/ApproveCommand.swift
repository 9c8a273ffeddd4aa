import ArgumentParser
import BatonCLISupport
import BatonController
import BatonProtocol
import Foundation

/// `baton approve APP@RELEASE --key KEY`: adds a signature to a registered release, from
/// any machine that shares the history store.
struct ApproveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "approve",
        abstract: "Approve a registered release: sign its manifest with your key, in the history store.",
        discussion: """
            The release is one `baton release create` registered (`baton release list` shows them). The \
            signature is over the registered manifest's exact bytes, as `baton manifest sign` would make it, \
            and is kept in the history store: once the environment's threshold is met, `baton rollout \
            APP@RELEASE` rolls it out from any controller sharing the store. Approving twice with one key \
            adds nothing. A key the trust policy does not count for the environment is refused (untrusted_key).
            """)

    @Argument(help: "The release, as APP@RELEASE (e.g. web@v2).") var reference: String
    @Option(help: ArgumentHelp("The approver's Ed25519 private key (PKCS#8 PEM).", valueName: "file")) var key: String?
    @Option(help: ArgumentHelp("Instead of --key: take the approvals on an envelope of this release signed elsewhere (`baton manifest sign` on its manifest file).", valueName: "file"))
    var envelope: String?
    @Option(help: ArgumentHelp("The environment, when the release is registered for several.", valueName: "env")) var environment: String?
    @OptionGroup var controller: ControllerOptions

    func run() async throws {
        guard (key == nil) != (envelope == nil) else {
            throw CLIError(code: "invalid_value", message: "give one of --key KEY (sign now) or --envelope FILE (signed elsewhere)")
        }
        let context = try ControllerContext(controller)
        let signingKey = try key.map { path throws(CLIError) in try loadSigningKey(path) }
        let envelopeBytes = try envelope.map { path throws(CLIError) in Array(try OperatorFiles.read(path, what: "envelope")) }
        let store = try context.releaseStore()
        let policy = try context.policy()
        do throws(ControllerError) {
            let release = try ReleaseApprovals.resolve(reference, environment: environment, in: store)
            let label = "\(release.reference) (\(release.environment), serial \(release.serial))"
            if let signingKey {
                let approval = try ReleaseApprovals.approve(release, with: signingKey, policy: policy, by: ControllerActor.current, now: Date())
                let added = try store.addApproval(approval)
                Output.line(added ? "\(label): approved with keyid \(signingKey.keyid)" : "\(label): already approved with keyid \(signingKey.keyid); nothing added")
            } else if let envelopeBytes {
                guard let policy else {
                    throw ControllerError(.configurationInvalid, "--envelope needs the trust policy (trustPolicy: in baton.yaml) to tell which signatures count")
                }
                for approval in try ReleaseApprovals.imported(envelopeBytes, into: release, policy: policy, by: ControllerActor.current, now: Date()) {
                    let added = try store.addApproval(approval)
                    Output.line("\(label): \(added ? "approved" : "already approved") with keyid \(approval.keyid) (from \(envelope ?? "the envelope"))")
                }
            }
            guard let policy else { return }
            let status = ReleaseApprovals.status(
                of: release, approvals: try store.approvals(app: release.app, environment: release.environment, serial: release.serial),
                policy: policy)
            if status.isMet {
                Output.line("approvals: \(status.summary); ready: baton rollout \(release.reference)")
            } else {
                Output.line("approvals: \(status.summary); \(status.threshold - status.approvedBy.count) more needed from \(status.missing.joined(separator: ", "))")
            }
        } catch {
            throw error.cli
        }
    }
}
