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
            let ca = try reported { () throws(PKIError) in try FleetCA.create(in: dir, name: name, validityDays: days) }
            Output.line("wrote \(ca.keyPath) (CA private key, mode 0600: keep it offline and backed up; it can mint any identity)")
            Output.line(
                "wrote \(ca.certificatePath) (CA certificate, valid until \(RFC3339.format(ca.certificate.notValidAfter)): the trust root for every agent and controller)")
            Output.line("next: baton pki issue agent HOST_ID --dns NAME --ip ADDR --ca \(dir)")
            Output.line("  or, keeping the key on the host: batond csr --host-id HOST_ID there, then baton pki sign-csr HOST_ID.csr --role agent --ca \(dir)")
        }
    }
}

/// "baton://agent/web-1, DNS web-1.example.com, IP 10.0.0.7, valid until 2027-01-01T00:00:00Z"
func describe(_ certificate: PeerCertificate) -> String {
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
