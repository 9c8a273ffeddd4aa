import ArgumentParser
import BatonCLISupport
import BatonController
import Foundation

/// `baton init DIR`: a new fleet directory in one command.
struct InitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Make a new fleet directory: CA, controller certificate, signing key, trust policy, example fleet and app files.",
        discussion: "Refuses a directory that already has files. Prints the next steps.")

    @Argument(help: "The new fleet directory.") var dir: String
    @Option(help: "The controller's name (its certificate is baton://controller/NAME; its signing key NAME).") var name = "ci"
    @Option(help: "The environments the trust policy lists.") var environments = "staging,production"

    func run() async throws {
        let environments = self.environments.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        let made: FleetDirectory.Made
        do { made = try FleetDirectory.create(at: dir, controller: name, environments: environments) } catch { throw error.cli }
        Output.line("made a fleet in \(dir):")
        Output.line("  pki/ca/ca.pem, pki/ca/ca.key   the fleet CA (keep ca.key offline and backed up)")
        Output.line("  \(made.certificate), \(made.key)   the controller's TLS identity baton://controller/\(name)")
        Output.line("  keys/\(name).key, keys/\(name).pub   the signing key (keyid \(made.signingKeyID))")
        Output.line("  trust-policy.yaml, fleet.yaml, apps/web.yaml, baton.yaml, .gitignore")
        Output.line("next:")
        Output.line("  1. on each host: batond csr --host-id web-1 ...; here: baton pki sign-csr web-1.csr --role agent --ca pki/ca")
        Output.line("     (or: baton pki issue agent web-1 --ip ADDR --ca pki/ca --out DIR) — see agent/INSTALL.md")
        Output.line("  2. install batond with its certificate, pki/ca/ca.pem, trust-policy.yaml and keys/*.pub; start it (agent/batond.service)")
        Output.line("  3. list the host in fleet.yaml, then from \(dir): baton status")
        Output.line("  4. baton deploy web --artifact web.tar.gz --release 2026.11.22-1 --environment \(environments[0]) --key keys/\(name).key")
    }
}
