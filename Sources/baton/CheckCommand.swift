import ArgumentParser
import BatonCLISupport
import BatonController
import BatonProtocol
import Foundation

/// `baton check`: everything the controller reads, checked before a rollout needs it.
struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check baton.yaml, the fleet, every app file, the trust policy, the signing key and the TLS credentials without contacting any agent.",
        discussion: """
            One line per check. With --reach, also asks every host once (its health, audit chain and certificate). \
            Exit status 0 when every check passed; 1 when one failed (each failure gives its code and what to do); \
            certificates that expire within 30 days are failures too.
            """)

    @Flag(help: "Also ask every host of the fleet once.") var reach = false
    @Flag(help: "JSON: one object, {ok, checks: [{ok, line}]}.") var json = false
    @OptionGroup var controller: ControllerOptions

    struct Outcome: Encodable {
        var ok: Bool
        var line: String
    }

    struct Report: Encodable {
        var ok: Bool
        var checks: [Outcome]
    }

    func run() async throws {
        let context = try ControllerContext(controller)
        var outcomes: [Outcome] = []
        func check(_ what: String, _ body: () throws -> String) {
            do {
                outcomes.append(Outcome(ok: true, line: "ok    \(what): \(try body())"))
            } catch {
                let cli = cliError(error)
                outcomes.append(Outcome(ok: false, line: "FAIL  \(what): \(cli.code): \(cli.message)"))
            }
        }
        let configuration = context.configuration
        outcomes.append(Outcome(ok: true, line: "ok    configuration: \(configuration.file ?? "flags and environment only")"))

        var policy: TrustPolicy?
        check("trust policy") {
            guard let loaded = try context.policy() else {
                throw CLIError(code: "missing_field", message: "no trust policy: set `trustPolicy:` in baton.yaml or --trust-policy")
            }
            policy = loaded
            return "\(configuration.trustPolicyPath ?? "-"): environments \(loaded.environments.keys.sorted().joined(separator: ", "))"
        }
        var fleet: Fleet?
        check("fleet") {
            let loaded = try context.fleet()
            fleet = loaded
            let environments = Set(loaded.hosts.map(\.environment)).sorted()
            return "\(loaded.hosts.count) host(s) in \(environments.joined(separator: ", "))"
        }
        if let directory = configuration.appsDirectory {
            let files = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".yaml") }.sorted()
            if files.isEmpty { outcomes.append(Outcome(ok: false, line: "FAIL  apps: app_unknown: no app files in \(directory)")) }
            for file in files {
                let name = file.hasSuffix(".app.yaml") ? String(file.dropLast(9)) : String(file.dropLast(5))
                check("app \(name)") {
                    let app = try context.app(name)
                    let unknown = policy.map { policy in app.environments.filter { policy.environments[$0] == nil } } ?? []
                    guard unknown.isEmpty else {
                        throw CLIError(code: "unknown_environment", message: "\(file) names environment(s) the trust policy does not list: \(unknown.joined(separator: ", "))")
                    }
                    return "\(directory)/\(file), environments \(app.environments.joined(separator: ", "))"
                }
            }
        } else {
            outcomes.append(Outcome(ok: false, line: "FAIL  apps: app_unknown: no apps directory: set `apps:` in baton.yaml or --apps"))
        }
        check("signing key") {
            guard let key = try context.revertKey() else {
                return "none set (reverts and rollbacks need `signingKey:` in baton.yaml)"
            }
            let names = policy.map { $0.names(of: key.verifyingKey) } ?? []
            guard !names.isEmpty || policy == nil else {
                throw CLIError(code: "untrusted_key", message: "\(configuration.signingKeyPath ?? "-") (keyid \(key.keyid)) is not in the trust policy: agents would refuse what it signs")
            }
            return "\(configuration.signingKeyPath ?? "-"): \(names.joined(separator: ", "))"
        }
        var credentialsReady = false
        check("TLS credentials") {
            let credentials: OwnCredentialsSummary
            do {
                let checked = try configuration.requireCredentials().check()
                credentials = OwnCredentialsSummary(identity: checked.certificate.identity.uri, expires: checked.certificate.notValidAfter)
            } catch {
                throw cliError(error)
            }
            let days = Int(credentials.expires.timeIntervalSinceNow / 86_400)
            guard days >= FleetStatus.certificateWarningDays else {
                throw CLIError(code: "certificate_expiring", message: "\(configuration.certificatePath ?? "-") expires in \(days) day(s); renew it with `baton pki issue controller`")
            }
            credentialsReady = true
            return "\(credentials.identity), valid \(days) more day(s), signed by the fleet CA"
        }

        if reach, let fleet, credentialsReady {
            let reach = try await context.withAgentClient(for: fleet.hosts, retry: .quick) { client in
                await FleetReach.check(client: client, hosts: fleet.hosts)
            }
            for host in reach {
                if let error = host.error {
                    outcomes.append(Outcome(ok: false, line: "FAIL  host \(host.host): \(error.code): \(error.message)"))
                } else if !host.ok {
                    outcomes.append(Outcome(ok: false, line: "FAIL  host \(host.host): \(host.problems.joined(separator: "; "))"))
                } else {
                    outcomes.append(Outcome(
                        ok: true,
                        line: "ok    host \(host.host): agent \(host.agentVersion ?? "?"), certificate valid \(host.certificateDaysLeft.map(String.init) ?? "?") more day(s)"))
                }
            }
        }
        if json {
            Output.line(String(decoding: (try? BatonJSON.encode(Report(ok: !outcomes.contains { !$0.ok }, checks: outcomes))) ?? Data(), as: UTF8.self))
        } else {
            for outcome in outcomes { Output.line(outcome.line) }
        }
        if outcomes.contains(where: { !$0.ok }) { throw ExitCode(1) }
    }

    struct OwnCredentialsSummary {
        var identity: String
        var expires: Date
    }
}
