import ArgumentParser
import BatonCLISupport

/// `baton`, the controller CLI. Commands hold argument parsing and output only; the work
/// is in the BatonController, BatonPKI and BatonProtocol libraries.
@main
struct BatonCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "baton",
        abstract: "Signed, staged, reversible deployments to a fleet of Linux hosts.",
        version: "0.1.0",
        subcommands: [KeysCommand.self, ManifestCommand.self, PKICommand.self, ReleaseCommand.self, ApproveCommand.self, RolloutCommand.self, DeployCommand.self, HistoryCommand.self, LockCommand.self, StatusCommand.self, CheckCommand.self, ReleasesCommand.self, LogsCommand.self, AuditCommand.self, EvidenceCommand.self, RollbackCommand.self, DrillCommand.self, ReportCommand.self, PlanCommand.self, InitCommand.self, DemoCommand.self]
    )

    static func main() async {
        await CommandMain.run(BatonCommand.self)
    }
}
