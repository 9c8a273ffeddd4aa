import ArgumentParser
import BatonAgent
import BatonCLISupport
import BatonProtocol
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Logging

/// `batond apply`: one deployment on this host with no network, through the same
/// verification, engine and records as the daemon. Also how an air-gapped host is
/// deployed from a USB stick.
struct ApplyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Deploy a signed envelope and its artifact on this host, without a controller.",
        discussion: """
            Prints each step as it happens. The artifact is checked against the manifest (size, then \
            SHA-256) before the envelope's serial is used: a wrong file is refused (size_mismatch, \
            digest_mismatch) with nothing recorded, and the same envelope still works with the right file. \
            Without --artifact the agent fetches the manifest's artifact.url (fetch: in the configuration). \
            Exit status: 0 succeeded; 1 refused, failed or rolled back (the previous release is live); \
            3 rollback failed (the host needs attention); 2 usage or configuration error.
            """)

    @Option(help: "The agent configuration file.") var config: String
    @Option(help: "The signed envelope.") var envelope: String
    @Option(help: "The artifact the manifest names (default: fetched from the manifest's artifact.url, unless already cached).")
    var artifact: String?
    @Option(help: "Log level for the diagnostic log on stderr.") var logLevel: String = "warning"

    func run() async throws {
        let engine = try await AgentSetup.openEngine(config: config, logLevel: logLevel)
        let bytes = try OperatorFiles.read(envelope, what: "envelope")
        if let artifact {
            guard FileManager.default.fileExists(atPath: artifact) else {
                throw CLIError(.fileNotFound, "artifact '\(artifact)' does not exist")
            }
        } else if let reference = try? Manifest.parse(payload: Envelope.parse(bytes).payload).artifact,
            reference.url == nil, !engine.hasArtifact(reference.sha256)
        {
            // Refused before the serial is used: without a file or a URL the deployment
            // could only fail.
            throw CLIError(
                code: AgentError.Code.artifactUnavailable.rawValue,
                message: "the manifest has no artifact.url and the artifact is not cached here: pass --artifact FILE")
        }
        await engine.reconcile()
        let accepted: DeploymentAccepted
        do {
            accepted = try await engine.submit(envelope: Array(bytes), artifactFile: artifact)
        } catch {
            throw CLIError(code: error.info.code, message: error.info.message, exitCode: CLIError.Status.failure)
        }
        if accepted.existing {
            var line = "already accepted as deployment \(accepted.id) (\(accepted.phase.rawValue))"
            // A serial is used once, whatever the outcome: say how to try again.
            if accepted.phase.isTerminal && accepted.phase != .succeeded {
                line += "; its serial is used, so sign a new envelope (a new serial) to deploy again"
            }
            Output.line(line)
        }
        // No daemon runs the engine's work loop here: this command's own task runs the
        // deployment (`wait`), beside the one that prints its events.
        async let ended = engine.wait(for: accepted.id)
        if let events = await engine.events(accepted.id) {
            for await event in events {
                let phase = event.phase.rawValue
                let column = phase + String(repeating: " ", count: max(0, 15 - phase.count))
                Output.line("\(RFC3339.format(event.time))  \(column) \(event.message)")
            }
        }
        let finished = await ended
        // The trees the deployment dropped are removed before this command exits: no
        // daemon is left to remove them.
        await engine.trashEmptied()
        guard let record = finished else {
            throw CLIError(AgentError(.notFound, "deployment \(accepted.id) has no record"), exitCode: CLIError.Status.failure)
        }
        switch record.phase {
        case .succeeded:
            return
        case .rollbackFailed:
            let error = record.error ?? AgentError(.rollbackFailed, "rollback failed").info
            throw CLIError(code: error.code, message: error.message, exitCode: 3)
        default:
            let error = record.error ?? ErrorInfo(code: record.phase.rawValue, message: "deployment ended \(record.phase.rawValue)")
            throw CLIError(code: error.code, message: "\(record.phase.rawValue): \(error.message)", exitCode: CLIError.Status.failure)
        }
    }
}

/// `batond status`: what this host runs, read from its own state.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Print each app's current and previous releases, last serial and last result.",
        discussion: """
            Only reads the data directory: it takes no lock and writes nothing, so it runs beside `batond run`. \
            Exit status: 0 every state file and record was read and the audit chain is intact; 3 some app state or \
            deployment record is unreadable (state_corrupt: each one is named on stderr with what to do) or the audit \
            chain is broken (audit_broken); 2 usage or configuration error.
            """)

    @Option(help: "The agent configuration file.") var config: String
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let configuration = try AgentSetup.loadConfiguration(config)
        let reader = StateReader(dataDirectory: configuration.dataDirectory)
        let apps = reader.apps()
        var problems = reader.problems()
        if case .broken(let line, let reason) = AuditVerifier.verify(dataDirectory: configuration.dataDirectory) {
            problems.append(
                AgentError(
                    .auditBroken,
                    "line \(line) of \(configuration.dataDirectory)/state/audit.log: \(reason); the evidence on this host was changed: compare with `baton audit` on the controller"))
        }
        if json {
            Output.write(String(decoding: try BatonJSON.encode(AppList(apps: apps), pretty: true), as: UTF8.self) + "\n")
        } else if apps.isEmpty {
            Output.line("no apps deployed on this host yet")
        } else {
            Output.line("APP".padding(20) + "CURRENT".padding(16) + "PREVIOUS".padding(16) + "SERIAL".padding(10) + "LAST RESULT")
            for app in apps {
                var result = [app.lastPhase?.rawValue, app.lastError.map { "(\($0.code))" }].compactMap { $0 }.joined(separator: " ")
                if let error = app.stateError { result = "STATE CORRUPT (\(error.code))" }
                Output.line(
                    app.app.padding(20) + (app.current ?? "-").padding(16) + (app.previous ?? "-").padding(16)
                        + (app.lastSerial.map(String.init) ?? "-").padding(10) + (result.isEmpty ? "-" : result))
            }
        }
        guard let last = problems.last else { return }
        for problem in problems.dropLast() { Output.error("error: \(problem.reportedCode): \(problem.message)") }
        throw CLIError(code: last.reportedCode, message: last.message, exitCode: CLIError.Status.needsAttention)
    }
}

/// `batond state`: the writing side of looking after a host's state, with the agent
/// stopped (both take the data directory's lock).
struct StateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "state", abstract: "Settle or rebuild the agent's state while batond is stopped.",
        subcommands: [Reconcile.self, Rebuild.self])

    struct Reconcile: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Do what `batond run` does at start, then exit: settle interrupted deployments, remove staging.",
            discussion: """
                Refuses while batond runs (agent_busy). Exit status: 0 settled; 3 some state is unreadable \
                (state_corrupt; those apps are left as they are); 2 usage or configuration error.
                """)

        @Option(help: "The agent configuration file.") var config: String

        func run() async throws {
            let engine = try await AgentSetup.openEngine(config: config, logLevel: "critical")
            let problems = await engine.reconcile()
            guard let last = problems.last else {
                Output.line("reconciled \(engine.layout.root)")
                return
            }
            for problem in problems.dropLast() { Output.error("error: \(problem.reportedCode): \(problem.message)") }
            throw CLIError(code: last.reportedCode, message: last.message, exitCode: CLIError.Status.needsAttention)
        }
    }

    struct Rebuild: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rebuild an app's unreadable state from current, the releases, the approved manifests and the records.",
            discussion: """
                Unreadable files (the app's state file, its deployment records) are renamed to \
                <file>.corrupt-<time>, never deleted. A release no succeeded record names can no longer be returned \
                to under the lower threshold; the serial is the highest any file names. Refuses while batond runs \
                (agent_busy) and when the app's state reads fine (state_intact). Exit status: 0 rebuilt; 1 refused; \
                2 usage or configuration error.
                """)

        @Option(help: "The agent configuration file.") var config: String
        @Argument(help: "The app whose state to rebuild.") var app: String

        func run() async throws {
            let engine = try await AgentSetup.openEngine(config: config, logLevel: "warning")
            guard !StateReader(dataDirectory: engine.layout.root).problems(of: app).isEmpty else {
                throw CLIError(
                    code: "state_intact", message: "the state and records of '\(app)' read fine; there is nothing to rebuild",
                    exitCode: CLIError.Status.failure)
            }
            let rebuilt: StateRebuild
            do {
                rebuilt = try await engine.rebuildState(app)
            } catch {
                throw CLIError(code: error.reportedCode, message: error.message, exitCode: CLIError.Status.failure)
            }
            for (from, to) in rebuilt.keptAside { Output.line("kept aside: \(from) -> \(to)") }
            Output.line("rebuilt the state of \(app): current \(rebuilt.current ?? "-"), previous \(rebuilt.previous ?? "-"), "
                + "last serial \(rebuilt.lastSerial.map(String.init) ?? "-")")
            Output.line("releases on disk: \(rebuilt.releases.isEmpty ? "none" : rebuilt.releases.joined(separator: ", "))")
            Output.line("succeeded here (a return may name them): \(rebuilt.succeeded.isEmpty ? "none" : rebuilt.succeeded.joined(separator: ", "))")
        }
    }
}

/// `batond audit verify`.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "Check the hash-chained audit log.", subcommands: [Verify.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check every line of state/audit.log against the one before it; name the first broken line.")

        @Option(help: "The data directory (default: from --config, else /var/lib/baton).") var dataDir: String?
        @Option(help: "The agent configuration file.") var config: String?

        func run() async throws {
            var root = dataDir ?? "/var/lib/baton"
            if dataDir == nil, let config {
                root = try AgentSetup.loadConfiguration(config).dataDirectory
            }
            switch AuditVerifier.verify(dataDirectory: root) {
            case .intact(let lines):
                Output.line("audit log intact: \(lines) line(s) in \(root)/state/audit.log")
            case .broken(let line, let reason):
                throw CLIError(
                    AgentError(.auditBroken, "line \(line) of \(root)/state/audit.log: \(reason)"),
                    exitCode: CLIError.Status.failure)
            }
        }
    }
}

/// Loading configuration and opening the engine, for the commands that work on this host.
enum AgentSetup {
    static func loadConfiguration(_ path: String) throws(CLIError) -> AgentConfiguration {
        do {
            return try AgentConfiguration.load(path)
        } catch {
            throw error.cli
        }
    }

    static func openEngine(config path: String, logLevel: String) async throws(CLIError) -> DeploymentEngine {
        let configuration = try loadConfiguration(path)
        let policy: TrustPolicy
        do {
            policy = try configuration.loadTrustPolicy()
        } catch {
            throw error.cli
        }
        var logger = Logger(label: "batond") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .warning
        logger[metadataKey: "baton.host"] = "\(configuration.hostID)"
        do {
            return try DeploymentEngine(configuration: configuration, policy: policy, logger: logger)
        } catch {
            throw error.cli
        }
    }
}

extension String {
    func padding(_ width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }
}
