import ArgumentParser
import BatonCLISupport
import BatonController
import BatonProtocol
import Foundation

extension ManifestCommand {
    struct Sign: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "sign",
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
}
