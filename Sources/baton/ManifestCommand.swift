import ArgumentParser
import BatonCLISupport
import BatonController
import BatonProtocol
import Foundation

struct ManifestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "manifest",
        abstract: "Sign manifests and verify envelopes.",
        subcommands: [Sign.self, Verify.self]
    )

    struct Sign: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sign a manifest (making an envelope) or add a signature to an envelope.",
            discussion: """
                A manifest JSON file becomes a DSSE envelope with one signature. An envelope gets one \
                more signature: this is how a second approver approves. Signing twice with the same key \
                adds nothing.
                """)

        @Argument(help: "A manifest JSON file or an envelope.") var file: String
        @Option(help: "The Ed25519 private key (PKCS#8 PEM).") var key: String
        @Option(name: [.short, .customLong("output")],
                help: "Where to write the envelope (default: NAME.envelope.json for a manifest, in place for an envelope).")
        var output: String?

        func run() async throws {
            let bytes = try OperatorFiles.read(file, what: "manifest")
            let signingKey = try loadSigningKey(key)
            var envelope: Envelope
            let isEnvelope = Self.looksLikeEnvelope(bytes)
            if isEnvelope {
                do {
                    envelope = try Envelope.parse(bytes)
                } catch {
                    throw CLIError(code: error.code.rawValue, message: "\(file): \(error.message)")
                }
            } else {
                try Self.checkManifest(bytes, file: file)
                envelope = Envelope(payloadType: Manifest.payloadType, payload: Array(bytes))
            }
            let before = envelope.signatures.count
            envelope.sign(with: signingKey)
            let destination = output ?? (isEnvelope ? file : Self.envelopeName(for: file))
            try OperatorFiles.write(envelope.serialized(), to: destination)
            if envelope.signatures.count == before {
                Output.line("\(destination): already signed by keyid \(signingKey.keyid); nothing added")
            } else {
                Output.line("\(destination): signed by keyid \(signingKey.keyid) (\(envelope.signatures.count) signature(s))")
            }
        }

        static func looksLikeEnvelope(_ bytes: Data) -> Bool {
            guard let object = try? JSONSerialization.jsonObject(with: bytes) as? [String: Any] else { return false }
            return object["payloadType"] != nil && object["payload"] != nil
        }

        /// A person is about to vouch for these bytes: refuse anything an agent would refuse.
        static func checkManifest(_ bytes: Data, file: String) throws(CLIError) {
            guard bytes.count <= Manifest.maxPayloadBytes else {
                throw CLIError(code: "too_large", message: "\(file) is over \(Manifest.maxPayloadBytes) bytes")
            }
            do {
                _ = try Manifest.parse(payload: Array(bytes))
            } catch {
                throw CLIError(code: error.code.rawValue, message: "\(file): \(error.message)")
            }
        }

        static func envelopeName(for file: String) -> String {
            let base = file.hasSuffix(".json") ? String(file.dropLast(5)) : file
            return base + ".envelope.json"
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
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
                    "verdict:     OK (\(verified.signers.count) of \(verified.requiredSignatures) required signature(s))")
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

extension String {
    /// `ConfigurationError.description` starts with its code; CLIError prints the code itself.
    func dropCode(_ code: String) -> String {
        hasPrefix(code + ": ") ? String(dropFirst(code.count + 2)) : self
    }
}
