import ArgumentParser
import BatonCLISupport
import BatonController
import BatonProtocol
import Foundation

extension ManifestCommand {
    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify",
            abstract: "Verify an envelope against a trust policy, as an agent of ENV would.",
            discussion: "Prints the manifest, who signed it and the verdict; exits 1 with the error code if refused.")

        @Argument(help: "The envelope.") var envelope: String
        @Option(help: "The trust policy file (YAML).") var trust: String
        @Option(help: "The environment of the host that would receive it.") var environment: String
        @Option(help: "The host id, to check the manifest's targets.") var host: String?
        @Flag(help: "JSON: one object with the manifest, its signers and the verdict.") var json = false

        struct Verdict: Encodable {
            var ok: Bool
            var manifest: Manifest
            var payloadDigest: String
            var signers: [Signer]
            var requiredSignatures: Int
        }

        func run() async throws {
            let bytes = try OperatorFiles.read(envelope, what: "envelope")
            let policy: TrustPolicy
            do {
                policy = try TrustPolicyFile.load(trust)
            } catch {
                throw CLIError(code: error.code.rawValue, message: error.description.dropCode(error.code.rawValue))
            }
            guard policy.environments[environment] != nil else {
                throw CLIError(
                    code: "unknown_environment",
                    message: "environment '\(environment)' is not in \(trust) (it has: \(policy.environments.keys.sorted().joined(separator: ", ")))")
            }
            do {
                let verified = try ManifestVerifier.verify(
                    envelope: bytes, policy: policy, host: HostIdentity(hostID: host, environment: environment),
                    history: { _ in .none }, now: Date())
                if json {
                    let verdict = Verdict(
                        ok: true, manifest: verified.manifest, payloadDigest: verified.payloadDigest, signers: verified.signers,
                        requiredSignatures: verified.requiredSignatures)
                    Output.line(String(decoding: (try? BatonJSON.encode(verdict)) ?? Data(), as: UTF8.self))
                    return
                }
                Self.printSummary(verified)
                Output.line(
                    "verdict:     OK (\(verified.signers.count) of \(verified.requiredSignatures) required signature(s))\(verified.breakGlass ? "; breaks glass: a change freeze is in force" : "")")
            } catch {
                throw CLIError(code: error.code.rawValue, message: error.message, exitCode: CLIError.Status.failure)
            }
        }

        static func printSummary(_ verified: VerifiedManifest) {
            let m = verified.manifest
            Output.line("app:         \(m.app)")
            Output.line("release:     \(m.release)")
            Output.line("serial:      \(m.serial)")
            Output.line("environment: \(m.environment)")
            if let targets = m.targets { Output.line("targets:     \(targets.joined(separator: ", "))") }
            Output.line("artifact:    sha256:\(m.artifact.sha256) (\(m.artifact.size) bytes, \(m.artifact.format.rawValue))")
            Output.line("issued:      \(RFC3339.format(m.issuedAt)), expires \(RFC3339.format(m.expiresAt))")
            if let owner = m.owner { Output.line("owner:       \(owner)") }
            if let source = m.source { Output.line("source:      \(source)") }
            for signer in verified.signers {
                Output.line("signed by:   \(signer.names.joined(separator: ", ")) (keyid \(signer.keyid))")
            }
        }
    }
}
