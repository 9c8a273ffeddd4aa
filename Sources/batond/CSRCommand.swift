import ArgumentParser
import BatonCLISupport
import BatonPKI

/// `batond csr`: makes this host's TLS private key and a certificate signing request for
/// the fleet CA, so the key never leaves the host. The operator signs the request with
/// `baton pki sign-csr ID.csr --role agent` and sends back ID.pem and the CA certificate.
struct CSRCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "csr",
        abstract: "Make this host's private key (ID.key, mode 0600) and a certificate signing request (ID.csr).",
        discussion: "Never overwrites an existing key.")

    @Option(name: .customLong("host-id"), help: ArgumentHelp("This host's id, e.g. web-1 (^[a-z0-9][a-z0-9._-]{0,63}$).", valueName: "id"))
    var hostID: String
    @Option(parsing: .upToNextOption, help: ArgumentHelp("DNS names the controller dials this host by.", valueName: "name"))
    var dns: [String] = []
    @Option(parsing: .upToNextOption, help: ArgumentHelp("IPv4 or IPv6 addresses the controller dials this host by.", valueName: "address"))
    var ip: [String] = []
    @Option(help: ArgumentHelp("Directory to write ID.key and ID.csr into.", valueName: "dir")) var out: String = "."

    func run() async throws {
        let (paths, identity, names) = try reported { () throws(PKIError) in
            let identity = try PeerIdentity(role: .agent, name: hostID)
            let names = try AlternativeNames(dnsNames: dns, ipAddresses: ip)
            let key = IdentityKey()
            let paths = try SigningRequest(identity: identity, names: names, key: key).write(key: key, to: out)
            return (paths, identity, names)
        }
        var asked = [identity.uri]
        if !names.dnsNames.isEmpty { asked.append("DNS " + names.dnsNames.joined(separator: " ")) }
        if !names.ipAddresses.isEmpty { asked.append("IP " + names.ipAddresses.joined(separator: " ")) }
        Output.line("wrote \(paths.key) (private key, mode 0600: it never leaves this host)")
        Output.line("wrote \(paths.request) (request for \(asked.joined(separator: ", ")))")
        Output.line("next: on the CA machine, baton pki sign-csr \(hostID).csr --role agent --ca CA_DIR; install the \(hostID).pem and ca.pem it gives back here")
    }
}
