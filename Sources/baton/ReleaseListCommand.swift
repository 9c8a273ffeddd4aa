import ArgumentParser
import BatonCLISupport
import BatonController
import BatonProtocol
import Foundation

extension ReleaseCommand {
    /// `baton release list`: the releases registered in the history store, with their
    /// approvals against each environment's threshold. (`baton releases APP` is another
    /// view: what each host of the fleet holds, asked of the agents.)
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "Registered releases, newest first: serial, approvals against the environment's threshold, where the artifact is.",
            discussion: "Read from the history store, so every controller sharing it shows the same. `baton releases APP` shows what the hosts hold instead.")

        @Argument(help: "Only this app.") var app: String?
        @Option(help: "How many.") var limit = 20
        @Flag(help: "JSON: one object per release.") var json = false
        @OptionGroup var controller: ControllerOptions

        /// A release as listed: the registration and where it stands.
        struct Row: Encodable {
            var app: String
            var release: String
            var environment: String
            var serial: UInt64
            var payloadSHA256: String
            var artifactSHA256: String
            var artifactLocation: String
            var createdBy: String
            var createdAt: Date
            var approvals: [Approval]
            var status: ReleaseApprovals.Status?
            var ready: Bool?
        }

        struct Approval: Encodable {
            var keyid: String
            var approvedBy: String
            var approvedAt: Date
        }

        func run() async throws {
            try checkNames((app, "app"))
            let context = try ControllerContext(controller)
            let store = try context.releaseStore()
            let policy = try context.policy()
            let rows: [Row]
            do {
                rows = try store.registeredReleases(app: app, limit: max(1, limit)).map { release throws(ControllerError) in
                    let approvals = try store.approvals(app: release.app, environment: release.environment, serial: release.serial)
                    let status = policy.map { ReleaseApprovals.status(of: release, approvals: approvals, policy: $0) }
                    return Row(
                        app: release.app, release: release.release, environment: release.environment, serial: release.serial,
                        payloadSHA256: release.payloadSHA256, artifactSHA256: release.artifactSHA256,
                        artifactLocation: release.artifactLocation, createdBy: release.createdBy, createdAt: release.createdAt,
                        approvals: approvals.map { Approval(keyid: $0.keyid, approvedBy: $0.approvedBy, approvedAt: $0.approvedAt) },
                        status: status, ready: status?.isMet)
                }
            } catch { throw error.cli }
            if json {
                for row in rows { Output.json(row) }
                return
            }
            if rows.isEmpty {
                Output.line("no releases registered\(app.map { " for \($0)" } ?? "")")
                return
            }
            Output.line("RELEASE              ENV          SERIAL  APPROVALS                  READY  ARTIFACT")
            for row in rows {
                let approvals = row.status?.summary ?? "\(row.approvals.count) (no trust policy)"
                let ready = row.ready.map { $0 ? "yes" : "no" } ?? "?"
                Output.line([pad("\(row.app)@\(row.release)", 20), pad(row.environment, 12), pad("\(row.serial)", 7), pad(approvals, 26),
                             pad(ready, 6), row.artifactLocation].joined(separator: " "))
            }
        }
    }
}
