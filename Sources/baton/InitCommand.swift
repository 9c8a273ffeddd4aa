import ArgumentParser
import BatonCLISupport
import BatonController
import BatonPKI
import BatonProtocol
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
        guard Name.isValid(name) else { throw CLIError(code: "invalid_name", message: "'\(name)' must match \(Name.pattern)") }
        let envs = environments.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard !envs.isEmpty, envs.allSatisfy(Name.isValid) else {
            throw CLIError(code: "invalid_name", message: "--environments must be names like staging,production")
        }
        let fm = FileManager.default
        if let entries = try? fm.contentsOfDirectory(atPath: dir), !entries.isEmpty {
            throw CLIError(code: "file_exists", message: "'\(dir)' already has files; choose a new directory")
        }
        func path(_ relative: String) -> String { (dir as NSString).appendingPathComponent(relative) }
        do {
            for sub in ["apps", "pki"] { try fm.createDirectory(atPath: path(sub), withIntermediateDirectories: true) }
            try fm.createDirectory(atPath: path("keys"), withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw CLIError(code: "write_failed", message: "cannot create '\(dir)': \(error.localizedDescription)")
        }
        let ca = try pkiOperation { () throws(PKIError) in try FleetCA.create(in: path("pki/ca"), name: (dir as NSString).lastPathComponent) }
        let controller = try pkiOperation { () throws(PKIError) in try ca.issueController(name: name) }
        let written = try pkiOperation { () throws(PKIError) in try controller.write(to: path("pki")) }
        let key = SigningKey()
        try OperatorFiles.write(Data(key.pem.utf8), to: path("keys/\(name).key"), mode: 0o600, overwrite: false)
        try OperatorFiles.write(Data(key.verifyingKey.pem.utf8), to: path("keys/\(name).pub"), overwrite: false)
        let environmentLines = envs.map { env in
            "  \(env): {threshold: 1, keys: [\(name)], rollbackThreshold: 1}"
                + (env == "production" ? "   # add approvers' keys and raise threshold to 2" : "")
        }.joined(separator: "\n")
        try write("""
            # Which keys may approve releases, per environment (Protocol/PROTOCOL.md §7). Copy this
            # file and the .pub files to every agent (its `trust:`). An environment with
            # threshold 2 needs two distinct approvers' signatures (`baton manifest sign`).
            keys:
              \(name): keys/\(name).pub
            environments:
            \(environmentLines)
            """, "trust-policy.yaml")
        try write("""
            # The hosts (reviewed like code; no secrets here). One entry per agent:
            # id = the agent's hostId and certificate identity; address = its listen address.
            hosts:
              - id: web-1
                address: 127.0.0.1:7443
                environment: \(envs[0])
                labels: {role: web}
            """, "fleet.yaml")
        try write("""
            # One app: what its releases run and how they are checked (the manifest's own shapes).
            app: web
            owner: team-web
            environments: [\(envs.joined(separator: ", "))]
            keep: 5
            bake: 30s
            hooks:
              activate: {command: [systemctl, restart, web], timeout: 60s}
            health:
              checks:
                - {type: http, url: "http://127.0.0.1:8080/health", expectStatus: "200-299"}
              interval: 1s
              deadline: 30s
            """, "apps/web.yaml")
        try write("""
            # The controller's configuration: run `baton` in this directory, or --config / BATON_CONFIG.
            fleet: fleet.yaml
            apps: apps
            trustPolicy: trust-policy.yaml
            stateDir: .baton
            tls: {certificate: \(relative(written.certificate)), key: \(relative(written.key)), ca: pki/ca/ca.pem}
            signingKey: keys/\(name).key
            """, "baton.yaml")
        try write(".baton/\npki/ca/ca.key\nkeys/*.key\npki/*.key\n", ".gitignore")
        Output.line("made a fleet in \(dir):")
        Output.line("  pki/ca/ca.pem, pki/ca/ca.key   the fleet CA (keep ca.key offline and backed up)")
        Output.line("  \(relative(written.certificate)), \(relative(written.key))   the controller's TLS identity baton://controller/\(name)")
        Output.line("  keys/\(name).key, keys/\(name).pub   the signing key (keyid \(key.keyid))")
        Output.line("  trust-policy.yaml, fleet.yaml, apps/web.yaml, baton.yaml, .gitignore")
        Output.line("next:")
        Output.line("  1. on each host: batond csr --host-id web-1 ...; here: baton pki sign-csr web-1.csr --role agent --ca pki/ca")
        Output.line("     (or: baton pki issue agent web-1 --ip ADDR --ca pki/ca --out DIR) — see agent/INSTALL.md")
        Output.line("  2. install batond with its certificate, pki/ca/ca.pem, trust-policy.yaml and keys/*.pub; start it (agent/batond.service)")
        Output.line("  3. list the host in fleet.yaml, then from \(dir): baton status")
        Output.line("  4. baton deploy web --artifact web.tar.gz --release 2026.11.22-1 --environment \(envs[0]) --key keys/\(name).key")

        func write(_ text: String, _ relative: String) throws(CLIError) {
            try OperatorFiles.write(Data((text + "\n").utf8), to: path(relative), overwrite: false)
        }
    }

    private func relative(_ full: String) -> String {
        full.hasPrefix(dir + "/") ? String(full.dropFirst(dir.count + 1)) : full
    }
}
