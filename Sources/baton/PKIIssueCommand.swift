import ArgumentParser
import BatonCLISupport
import BatonPKI
import BatonProtocol

extension PKICommand {
    struct Issue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "issue",
            abstract: "Issue a certificate with a new private key: NAME.pem and NAME.key (mode 0600).",
            subcommands: [Agent.self, Controller.self])

        struct Agent: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "agent",
                abstract: "Issue an agent certificate (TLS server and client): baton://agent/HOST_ID plus DNS and IP names.")

            @Argument(help: "The host id, e.g. web-1 (^[a-z0-9][a-z0-9._-]{0,63}$).") var hostID: String
            @Option(parsing: .upToNextOption, help: ArgumentHelp("DNS names the controller dials the host by.", valueName: "name"))
            var dns: [String] = []
            @Option(parsing: .upToNextOption, help: ArgumentHelp("IPv4 or IPv6 addresses the controller dials the host by.", valueName: "address"))
            var ip: [String] = []
            @OptionGroup var common: IssueOptions

            func run() async throws {
                let ca = try common.loadCA()
                let credential = try reported { () throws(PKIError) in
                    try ca.issueAgent(hostID: hostID, dnsNames: dns, ipAddresses: ip, validityDays: common.days ?? FleetCA.defaultAgentValidityDays)
                }
                let paths = try common.write(credential)
                Output.line("next: install \(paths.certificate), \(paths.key) and \(ca.certificatePath) on the host as the agent's TLS certificate, key and CA")
            }
        }

        struct Controller: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "controller",
                abstract: "Issue a controller certificate (TLS client only): baton://controller/NAME.")

            @Argument(help: "The controller name, e.g. ci or alice (^[a-z0-9][a-z0-9._-]{0,63}$).") var name: String
            @OptionGroup var common: IssueOptions

            func run() async throws {
                let ca = try common.loadCA()
                let credential = try reported { () throws(PKIError) in
                    try ca.issueController(name: name, validityDays: common.days ?? FleetCA.defaultControllerValidityDays)
                }
                let paths = try common.write(credential)
                Output.line("next: give \(paths.certificate), \(paths.key) and \(ca.certificatePath) to the controller as its TLS certificate, key and CA")
            }
        }
    }

    /// The options `issue agent` and `issue controller` share.
    struct IssueOptions: ParsableArguments {
        @Option(help: ArgumentHelp("The CA directory (ca.pem, ca.key).", valueName: "dir")) var ca: String = "."
        @Option(help: ArgumentHelp("Directory to write NAME.pem and NAME.key into.", valueName: "dir")) var out: String = "."
        @Option(help: ArgumentHelp("Validity in days (default 397).", valueName: "n")) var days: Int?

        func loadCA() throws(CLIError) -> FleetCA {
            try reported { () throws(PKIError) in try FleetCA.load(from: ca) }
        }

        /// Writes the key and certificate into --out and says so.
        func write(_ credential: IssuedCredential) throws(CLIError) -> (certificate: String, key: String) {
            let paths = try reported { () throws(PKIError) in try credential.write(to: out) }
            Output.line("wrote \(paths.key) (private key, mode 0600)")
            Output.line("wrote \(paths.certificate) (\(describe(credential.certificate)))")
            return paths
        }
    }
}
