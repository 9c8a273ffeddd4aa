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
}

extension String {
    /// `ConfigurationError.description` starts with its code; CLIError prints the code itself.
    func dropCode(_ code: String) -> String {
        hasPrefix(code + ": ") ? String(dropFirst(code.count + 2)) : self
    }
}
