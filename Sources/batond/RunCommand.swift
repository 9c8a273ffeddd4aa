import ArgumentParser
import BatonAgent
import BatonCLISupport
import BatonProtocol
import Logging

/// `batond run`: the agent daemon. Parses flags, bootstraps logging and hands over to
/// `AgentService` (one ServiceGroup: the HTTPS API, the metrics listener, the engine).
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the agent: serve the mutual-TLS API and Prometheus metrics, deploy what controllers send.",
        discussion: """
            Logs one event per line to stderr. SIGTERM or SIGINT stops gracefully (running deployments get \
            --shutdown-grace to end; any still running are reconciled at the next start). SIGHUP reloads the TLS \
            certificate, key and CA and the trust policy; a file that does not load keeps the old one and the log \
            says why. Exit status: 0 after a graceful stop; 2 configuration error; 1 anything else.
            """)

    @Option(help: "The agent configuration file.") var config: String = "/etc/baton/batond.yaml"
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel: Logger.Level = .info
    @Option(help: "Seconds running deployments get to end after SIGTERM.") var shutdownGrace: Int = 30
    @Option(help: "Seconds before an idle API connection is closed.") var idleTimeout: Int = 30
    @Option(help: "Seconds a connection has to complete its TLS handshake.") var handshakeTimeout: Int = 10
    @Flag(
        inversion: .prefixedNo,
        help: "Once the API listens, give back the pages of the binary only start-up touched, and map code one page at a time (Linux; see docs/footprint.md).")
    var trimStartupPages = true
    @Option(
        help: "Seconds without any API call or deployment after which the binary's pages are given back again (0: never; Linux; see docs/footprint.md).")
    var trimIdleAfter: Int = 30

    func validate() throws {
        guard shutdownGrace >= 0, idleTimeout > 0, handshakeTimeout > 0, trimIdleAfter >= 0 else {
            throw ValidationError(
                "--shutdown-grace and --trim-idle-after must be 0 or more, --idle-timeout and --handshake-timeout more than 0")
        }
    }

    func run() async throws {
        AgentService.limitEventLoopThreads()
        AgentService.limitMallocArenas()
        let configuration = try AgentSetup.loadConfiguration(config)
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler = LineLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: "batond")
        logger[metadataKey: "baton.host"] = "\(configuration.hostID)"

        var options = AgentService.Options()
        options.shutdownGrace = .seconds(shutdownGrace)
        options.api.idleTimeout = .seconds(idleTimeout)
        options.api.handshakeTimeout = .seconds(handshakeTimeout)
        options.trimStartupPages = trimStartupPages
        if trimStartupPages && trimIdleAfter > 0 { options.trimWhenIdleAfter = .seconds(trimIdleAfter) }
        let service: AgentService
        do {
            service = try AgentService(configuration: configuration, options: options, logger: logger)
        } catch let error as AgentError {
            throw CLIError(error, exitCode: CLIError.Status.failure)
        } catch let error as any CodedError {
            // The service's own and its configuration's problems: usage (2).
            throw error.cli
        }
        do {
            try await service.run()
        } catch let error as AgentServiceError {
            throw CLIError(error, exitCode: CLIError.Status.failure)
        } catch {
            throw CLIError(code: "agent_failed", message: "\(error)", exitCode: CLIError.Status.failure)
        }
    }
}
