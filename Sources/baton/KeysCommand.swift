import ArgumentParser
import BatonCLISupport
import BatonController
import BatonProtocol
import Foundation

struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Make and inspect Ed25519 signing keys.",
        subcommands: [Generate.self, ID.self]
    )

    struct Generate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "generate",
            abstract: "Write NAME.key (PKCS#8, mode 0600) and NAME.pub, and print the keyid.")

        @Argument(help: "Name of the key, e.g. alice or ci.") var name: String
        @Option(help: "Directory to write the key files into.") var dir: String = "."

        func run() async throws {
            guard Name.isValid(name) else {
                throw CLIError(code: "invalid_name", message: "key name '\(name)' must match \(Name.pattern)")
            }
            let key = SigningKey()
            let keyPath = "\(dir)/\(name).key", pubPath = "\(dir)/\(name).pub"
            if !FileManager.default.fileExists(atPath: dir) {
                // Like `pki init`: a new directory for secrets is private from the start.
                do {
                    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                } catch {
                    throw CLIError(code: "write_failed", message: "cannot create '\(dir)': \(error.localizedDescription)")
                }
            }
            if FileManager.default.fileExists(atPath: keyPath) || FileManager.default.fileExists(atPath: pubPath) {
                throw CLIError(
                    code: "file_exists", message: "'\(keyPath)' or '\(pubPath)' already exists; a key is never overwritten")
            }
            try OperatorFiles.write(Data(key.pem.utf8), to: keyPath, mode: 0o600, overwrite: false)
            try OperatorFiles.write(Data(key.verifyingKey.pem.utf8), to: pubPath, mode: 0o644, overwrite: false)
            Output.line("wrote \(keyPath) (private, keep it secret) and \(pubPath)")
            Output.line("keyid \(key.keyid)")
        }
    }

    struct ID: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "id", abstract: "Print the keyid of a public or private key file.")

        @Argument(help: "A .pub or .key PEM file.") var file: String

        func run() async throws {
            let pem = try OperatorFiles.readText(file, what: "key file")
            do {
                Output.line(try VerifyingKey(pem: pem).keyid)
            } catch {
                throw CLIError(code: error.code.rawValue, message: "\(file): \(error.message)")
            }
        }
    }
}

/// Loads a private signing key, with errors that name the file.
func loadSigningKey(_ path: String) throws(CLIError) -> SigningKey {
    do { return try ControllerFiles.signingKey(at: path) } catch { throw CLIError.reporting(error) }
}
