import ArgumentParser
import BatonCLISupport
import BatonPKI
import BatonProtocol

/// `baton pki`: the fleet certificate authority (docs/design.md §2). The CA key stays on the
/// operator's machine; agents get certificates either issued here with a new key, or
/// signed from a CSR made on the host (`batond csr`), whose key never leaves it.
struct PKICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pki",
        abstract: "Run the fleet certificate authority: TLS certificates for agents and controllers.",
        subcommands: [Init.self, Issue.self, SignCSR.self]
    )

    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "init",
            abstract: "Create the fleet CA: DIR/ca.pem (certificate) and DIR/ca.key (private key, mode 0600).",
            discussion: "Never overwrites an existing CA.")

        @Argument(help: "Directory for the CA; created with mode 0700 if missing.") var dir: String
        @Option(help: "A fleet name for the CA's subject, e.g. prod: \"Baton fleet CA (prod)\".") var name: String?
        @Option(help: ArgumentHelp("Validity of the CA certificate, in days.", valueName: "n")) var days: Int = FleetCA.defaultValidityDays

        func run() async throws {
            let ca = try pkiOperation { () throws(PKIError) in try FleetCA.create(in: dir, name: name, validityDays: days) }
            Output.line("wrote \(ca.keyPath) (CA private key, mode 0600: keep it offline and backed up; it can mint any identity)")
            Output.line(
                "wrote \(ca.certificatePath) (CA certificate, valid until \(RFC3339.format(ca.certificate.notValidAfter)): the trust root for every agent and controller)")
            Output.line("next: baton pki issue agent HOST_ID --dns NAME --ip ADDR --ca \(dir)")
            Output.line("  or, keeping the key on the host: batond csr --host-id HOST_ID there, then baton pki sign-csr HOST_ID.csr --role agent --ca \(dir)")
        }
    }

    struct Issue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Issue a certificate with a new private key: NAME.pem and NAME.key (mode 0600).",
            subcommands: [Agent.self, Controller.self])

        struct Agent: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Issue an agent certificate (TLS server and client): baton://agent/HOST_ID plus DNS and IP names.")

            @Argument(help: "The host id, e.g. web-1 (^[a-z0-9][a-z0-9._-]{0,63}$).") var hostID: String
            @Option(parsing: .upToNextOption, help: ArgumentHelp("DNS names the controller dials the host by.", valueName: "name"))
            var dns: [String] = []
            @Option(parsing: .upToNextOption, help: ArgumentHelp("IPv4 or IPv6 addresses the controller dials the host by.", valueName: "address"))
            var ip: [String] = []
            @OptionGroup var common: IssueOptions

            func run() async throws {
                let ca = try common.loadCA()
                let credential = try pkiOperation { () throws(PKIError) in
                    try ca.issueAgent(hostID: hostID, dnsNames: dns, ipAddresses: ip, validityDays: common.days ?? FleetCA.defaultAgentValidityDays)
                }
                let paths = try common.write(credential)
                Output.line("next: install \(paths.certificate), \(paths.key) and \(ca.certificatePath) on the host as the agent's TLS certificate, key and CA")
            }
        }

        struct Controller: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Issue a controller certificate (TLS client only): baton://controller/NAME.")

            @Argument(help: "The controller name, e.g. ci or alice (^[a-z0-9][a-z0-9._-]{0,63}$).") var name: String
            @OptionGroup var common: IssueOptions

            func run() async throws {
                let ca = try common.loadCA()
                let credential = try pkiOperation { () throws(PKIError) in
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
            try pkiOperation { () throws(PKIError) in try FleetCA.load(from: ca) }
        }

        /// Writes the key and certificate into --out and says so.
        func write(_ credential: IssuedCredential) throws(CLIError) -> (certificate: String, key: String) {
            let paths = try pkiOperation { () throws(PKIError) in try credential.write(to: out) }
            Output.line("wrote \(paths.key) (private key, mode 0600)")
            Output.line("wrote \(paths.certificate) (\(describe(credential.certificate)))")
            return paths
        }
    }

    struct SignCSR: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "sign-csr",
            abstract: "Sign a certificate signing request made on a host with `batond csr`.",
            discussion: """
                Checks the CSR's own signature and that it asks for exactly one identity of ROLE: an agent \
                CSR asking to be a controller is refused. Only the identity and the DNS/IP names are taken \
                from it. Writes the certificate next to the CSR as NAME.pem unless --out is given.
                """)

        enum Role: String, ExpressibleByArgument, CaseIterable {
            case agent, controller
        }

        @Argument(help: "The CSR file (PEM).") var file: String
        @Option(help: "The role to certify: agent or controller.") var role: Role
        @Option(help: ArgumentHelp("The CA directory (ca.pem, ca.key).", valueName: "dir")) var ca: String = "."
        @Option(help: ArgumentHelp("Where to write the certificate (default: NAME.pem next to the CSR).", valueName: "file"))
        var out: String?
        @Option(help: ArgumentHelp("Validity in days (default 397).", valueName: "n")) var days: Int?

        func run() async throws {
            let authority = try pkiOperation { () throws(PKIError) in try FleetCA.load(from: ca) }
            let certificate = try pkiOperation { () throws(PKIError) in
                let request: SigningRequest
                do throws(PKIError) {
                    request = try SigningRequest(pem: try PEMFile.read(file, what: "CSR"))
                } catch where error.code == .badPEM {
                    throw PKIError(error.code, "\(file): \(error.message)")
                }
                return try authority.sign(request, as: role == .agent ? .agent : .controller, validityDays: days)
            }
            let path = out ?? "\(Self.directory(of: file))/\(certificate.identity.name).pem"
            try pkiOperation { () throws(PKIError) in try PEMFile.write(certificate.pem, to: path, kind: .publicMaterial) }
            Output.line("wrote \(path) (\(describe(certificate)))")
            Output.line("next: install it and \(authority.certificatePath) on the host, next to the key the CSR was made with")
        }

        static func directory(of path: String) -> String {
            guard let slash = path.lastIndex(of: "/") else { return "." }
            return slash == path.startIndex ? "/" : String(path[..<slash])
        }
    }
}

/// "baton://agent/web-1, DNS web-1.example.com, IP 10.0.0.7, valid until 2027-01-01T00:00:00Z"
private func describe(_ certificate: PeerCertificate) -> String {
    var parts = [certificate.identity.uri]
    if !certificate.alternativeNames.dnsNames.isEmpty {
        parts.append("DNS " + certificate.alternativeNames.dnsNames.joined(separator: " "))
    }
    if !certificate.alternativeNames.ipAddresses.isEmpty {
        parts.append("IP " + certificate.alternativeNames.ipAddresses.joined(separator: " "))
    }
    parts.append("valid until \(RFC3339.format(certificate.notValidAfter))")
    return parts.joined(separator: ", ")
}

/// Runs a BatonPKI operation, reporting its error as the one-line `error: <code>: <message>`.
func pkiOperation<T>(_ body: () throws(PKIError) -> T) throws(CLIError) -> T {
    do {
        return try body()
    } catch {
        // Bad input and configuration exit 2; a failing disk or a bug exits 1.
        let status = error.code == .ioError || error.code == .internalError ? CLIError.Status.failure : CLIError.Status.usage
        // One line, whatever a parser's error text held.
        let message = error.message.split(whereSeparator: \.isNewline).joined(separator: " ")
        throw CLIError(code: error.code.rawValue, message: message, exitCode: status)
    }
}
