import ArgumentParser
import BatonCLISupport
import BatonController
import BatonProtocol
import Foundation

struct ReleaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "release",
        abstract: "Register an artifact and write the unsigned manifest of a release.",
        subcommands: [Create.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Hash and store the artifact, pick the next serial, write the unsigned manifest.",
            discussion: """
                The serial is above every serial the environment's agents report for the app and above \
                the controller's own record. Hooks, health checks, bake, keep and owner come from the \
                app file. Approvers then sign the manifest with `baton manifest sign`.
                """)

        @Argument(help: "The app (its app file is <apps>/<app>.yaml).") var app: String
        @OptionGroup var release: ReleaseOptions
        @Option(name: [.short, .customLong("output")], help: ArgumentHelp("Where to write the manifest (default: APP-RELEASE.manifest.json).", valueName: "file"))
        var outputFile: String?
        @OptionGroup var controller: ControllerOptions

        func run() async throws {
            let context = try ControllerContext(controller)
            let created = try await release.create(app: app, context: context)
            let path = outputFile ?? "\(app)-\(created.manifest.release).manifest.json"
            let data: Data
            do { data = try BatonJSON.encode(created.manifest, pretty: true) } catch {
                throw CLIError(code: "internal_error", message: "\(error)")
            }
            try OperatorFiles.write(data, to: path)
            Output.line("wrote \(path): \(app) \(created.manifest.release), serial \(created.manifest.serial), \(created.manifest.environment), artifact sha256:\(created.manifest.artifact.sha256) (\(created.manifest.artifact.size) bytes)")
            Output.line("next: baton manifest sign \(path) --key KEY   (each approver), then: baton rollout \(ManifestCommand.Sign.envelopeName(for: path))")
        }
    }
}
