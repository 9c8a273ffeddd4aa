import ArgumentParser
import BatonCLISupport
import BatonPKI
import BatonProtocol

extension PKICommand {
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
            let authority = try reported { () throws(PKIError) in try FleetCA.load(from: ca) }
            let certificate = try reported { () throws(PKIError) in
                let request: SigningRequest
                do throws(PKIError) {
                    request = try SigningRequest(pem: try PEMFile.read(file, what: "CSR"))
                } catch where error.code == .badPEM {
                    throw PKIError(error.code, "\(file): \(error.message)")
                }
                return try authority.sign(request, as: role == .agent ? .agent : .controller, validityDays: days)
            }
            let path = out ?? "\(Self.directory(of: file))/\(certificate.identity.name).pem"
            try reported { () throws(PKIError) in try PEMFile.write(certificate.pem, to: path, kind: .publicMaterial) }
            Output.line("wrote \(path) (\(describe(certificate)))")
            Output.line("next: install it and \(authority.certificatePath) on the host, next to the key the CSR was made with")
        }

        static func directory(of path: String) -> String {
            guard let slash = path.lastIndex(of: "/") else { return "." }
            return slash == path.startIndex ? "/" : String(path[..<slash])
        }
    }
}
