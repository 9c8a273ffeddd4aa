import ArgumentParser
import BatonCLISupport
import BatonController
import BatonProtocol
import Foundation

struct ReleaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "release",
        abstract: "Register a release (its artifact and unsigned manifest), and list the registered ones with their approvals.",
        subcommands: [Create.self, List.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "create",
            abstract: "Hash and store the artifact, pick the next serial, write the unsigned manifest.",
            discussion: """
                The serial is above every serial the environment's agents report for the app and above \
                the controller's own record. Hooks, health checks, bake, keep and owner come from the \
                app file. The release is registered in the history store (shared by a team's \
                controllers when it is PostgreSQL), with where its artifact is: approvers then add \
                their signatures from any machine with `baton approve APP@RELEASE --key KEY`, or sign \
                the manifest file with `baton manifest sign`.
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
            // The registered bytes: a signature made over this file counts for the registered release too.
            try OperatorFiles.write(Data(created.payload), to: path)
            let reference = "\(app)@\(created.manifest.release)"
            Output.line("wrote \(path): \(app) \(created.manifest.release), serial \(created.manifest.serial), \(created.manifest.environment), artifact sha256:\(created.manifest.artifact.sha256) (\(created.manifest.artifact.size) bytes)")
            Output.line("registered \(reference) for \(created.manifest.environment) (serial \(created.manifest.serial)) in the history store")
            Output.line("next: baton approve \(reference) --key KEY   (each approver, on any machine sharing the store), then: baton rollout \(reference)")
            Output.line("  or: baton manifest sign \(path) --key KEY, then: baton rollout \(ManifestCommand.Sign.envelopeName(for: path))")
        }
    }
}
