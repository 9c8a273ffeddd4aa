import ArgumentParser
import BatonAgent
import BatonCLISupport

/// `batond`, the agent on every host. Parses flags into configuration and hands over to
/// the BatonAgent library.
@main
struct BatondCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batond",
        abstract: "The Baton agent: verifies, stages, switches and health-checks releases on this host.",
        version: AgentVersion.current,
        subcommands: [RunCommand.self, ApplyCommand.self, StatusCommand.self, AuditCommand.self, StateCommand.self, CSRCommand.self]
    )

    static func main() async {
        await CommandMain.run(BatondCommand.self)
    }
}
