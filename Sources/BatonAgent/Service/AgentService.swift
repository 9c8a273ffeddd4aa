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
import NIOCore
import ServiceLifecycle
import UnixSignals

/// `batond run`: one `ServiceGroup` with the engine, the HTTPS API, the metrics
/// listener, the metrics observer and the SIGHUP reloader.
///
/// * SIGTERM and SIGINT shut down gracefully: the API stops accepting first (open event
///   streams end), then running deployments get `shutdownGrace` to finish; whatever is
///   still running is left to reconciliation at the next start (`EngineService`).
/// * SIGHUP reloads the TLS material and the trust policy (`ReloadService`).
/// * At start, before anything is served, the engine reconciles what a crash left.
public struct AgentService: Sendable {
    /// Every field has a default.
    public struct Options: Sendable {
        public var api = AgentAPI.Options()
        /// How long running deployments may take to end after SIGTERM.
        public var shutdownGrace: Duration = .seconds(30)
        /// Once the API listens, give back the pages of the binary that only start-up
        /// touched (`ResidentCode.release()`). Off for the library (tests, embedding);
        /// `batond run` turns it on unless `--no-trim-startup-pages`.
        public var trimStartupPages = false
        /// Give them back again each time no call and no deployment happened for this long
        /// (`IdleTrimService`); nil: never. `batond run` sets 30 s unless
        /// `--trim-idle-after 0` or `--no-trim-startup-pages`.
        public var trimWhenIdleAfter: Duration?

        public init() {}
    }

    public let configuration: AgentConfiguration
    public let engine: DeploymentEngine
    public let metrics: AgentMetrics
    public let tls: TLSContextStore
    private let options: Options
    private let logger: Logger

    /// Loads the TLS material and the trust policy, then opens the engine (which takes
    /// the data directory's lock). Throws `AgentServiceError`, `ConfigurationError` or
    /// `AgentError`.
    public init(configuration: AgentConfiguration, options: Options = Options(), logger: Logger) throws {
        guard let files = configuration.tls else {
            throw AgentServiceError(
                .tlsNotConfigured,
                "the configuration has no tls: section (certificate, privateKey, ca); batond run serves only mutual TLS")
        }
        let material = try TLSMaterial.load(files, hostID: configuration.hostID, requireCurrent: true)
        let policy = try configuration.loadTrustPolicy()
        self.configuration = configuration
        self.options = options
        self.logger = logger
        tls = TLSContextStore(material)
        metrics = AgentMetrics(hostID: configuration.hostID, environment: configuration.environment, version: AgentVersion.current)
        metrics.certificateLoaded(notValidAfter: material.notValidAfter)
        engine = try DeploymentEngine(configuration: configuration, policy: policy, logger: logger)
    }

    /// Runs until SIGTERM or SIGINT (or until a listener fails).
    public func run() async throws {
        // Trap SIGHUP before anything is served: its default action would end the process.
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        logger.notice(
            "batond starting",
            metadata: [
                "baton.version": "\(AgentVersion.current)", "baton.environment": "\(configuration.environment)",
                "baton.data_dir": "\(configuration.dataDirectory)",
                "baton.certificate.serial": "\(tls.current.serial)",
            ])
        await engine.reconcile()

        let observer = DeploymentObserver(engine: engine, metrics: metrics)
        let audit = engine.auditStatus
        metrics.auditChain(intact: audit.intact)
        if let problem = audit.problem {
            logger.critical(
                "the audit chain is broken; the break is recorded in the log, and health reports degraded until an operator looks",
                metadata: ["baton.audit.problem": "\(problem)"])
        }
        let activity = APIActivity()
        let api = AgentAPI(
            engine: engine, metrics: metrics, tls: tls, activity: activity, onAccepted: { observer.follow($0) })
        let logger = self.logger
        let trim = options.trimStartupPages
        let apiApp = api.application(
            tls: tls, address: configuration.listen, options: options.api, logger: logger
        ) { address in
            logger.notice("api listening", metadata: ["baton.listen": "\(address.hostAndPort)"])
            // Start-up is over (configuration, TLS material, reconciliation, the listener):
            // its code need not stay resident. What serving needs comes back on demand.
            if trim {
                let outcome = ResidentCode.release()
                logger.info(
                    "startup pages released",
                    metadata: [
                        "baton.rss_kib.before": "\(outcome.residentBefore)", "baton.rss_kib.after": "\(outcome.residentAfter)",
                        "baton.mappings": "\(outcome.pagedOut)/\(outcome.mappings)",
                    ])
            }
        }
        var metricsListener: [any Service] = []
        if let address = configuration.metricsListen {
            let metricsApp = MetricsEndpoint.application(metrics: metrics, address: address, logger: logger) { address in
                logger.notice("metrics listening", metadata: ["baton.listen": "\(address.hostAndPort)"])
            }
            metricsListener = [ListenerService(name: "metrics", address: address, base: metricsApp)]
        } else {
            logger.notice("metrics off: set metricsListen (e.g. 127.0.0.1:9464) to serve /metrics")
        }
        var idleTrim: [any Service] = []
        if let after = options.trimWhenIdleAfter {
            idleTrim = [IdleTrimService(
                activity: activity, isBusy: { [engine] in await engine.hasWork }, after: after, logger: logger)]
        }
        // Graceful shutdown runs in reverse order: the API stops first, the engine last.
        let engineService: [any Service] = [EngineService(engine: engine, grace: options.shutdownGrace, logger: logger)]
        let rest: [any Service] = idleTrim + [
            observer,
            ReloadService(
                signals: hangups, configuration: configuration, engine: engine, tls: tls, metrics: metrics,
                logger: logger),
            ListenerService(name: "api", address: configuration.listen, base: apiApp),
        ]
        var group = ServiceGroupConfiguration(
            services: engineService + metricsListener + rest,
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger)
        group.maximumGracefulShutdownDuration = options.shutdownGrace + .seconds(15)
        group.maximumCancellationDuration = .seconds(5)
        try await ServiceGroup(configuration: group).run()
        logger.notice("batond stopped")
    }

}

extension AgentService {
    /// Caps the threads of NIO's shared event loop group (the API, the metrics listener
    /// and the health probes all run on it) and of its blocking pool at `maximum`.
    ///
    /// NIO's default is one thread per core. An agent serves a handful of controller
    /// connections, yet on a 64-core host it would keep 64 loop threads, and each loop
    /// that serves a connection gets a malloc arena of its own that keeps freed memory
    /// (measured with 32 loops and 100 connections: 1.6 MB more anonymous memory and 30
    /// more threads than with 2). `NIO_SINGLETON_GROUP_LOOP_COUNT` and
    /// `NIO_SINGLETON_BLOCKING_POOL_THREAD_COUNT` in the environment still decide.
    ///
    /// Call once, first thing in the process: NIO traps if the sizes change after its
    /// singletons were used, or twice.
    public static func limitEventLoopThreads(to maximum: Int = 2) {
        let count = max(1, min(maximum, System.coreCount))
        if getenv("NIO_SINGLETON_GROUP_LOOP_COUNT") == nil {
            NIOSingletons.groupLoopCountSuggestion = count
        }
        if getenv("NIO_SINGLETON_BLOCKING_POOL_THREAD_COUNT") == nil {
            NIOSingletons.blockingPoolThreadCountSuggestion = count
        }
    }

    /// Keeps glibc's malloc to one arena (unless `MALLOC_ARENA_MAX` in the environment
    /// says otherwise). Each thread that allocates while another holds the arena gets one
    /// of its own (up to 8 per core), and what a deployment's threads freed stays spread
    /// over them: measured with `bench/agent-footprint.sh`, idle again after a 100 MB
    /// deployment 12.0 MB (3.8 MB anonymous) with the default, 11.2 MB (3.1 MB) with one
    /// arena, with the upload's and the deployment's peaks and times no worse. The agent
    /// allocates little and from few threads at once; each thread's cache of small
    /// blocks (tcache) still spares most allocations the arena's lock. True when set.
    @discardableResult
    public static func limitMallocArenas(to count: Int32 = 1) -> Bool {
        guard getenv("MALLOC_ARENA_MAX") == nil, let mallopt = ResidentCode.mallopt else { return false }
        return mallopt(ResidentCode.mallocArenaMax, count) == 1
    }
}

/// A listener whose failure to start says which one and where.
struct ListenerService: Service {
    let name: String
    let address: ListenAddress
    let base: any Service

    func run() async throws {
        do {
            try await base.run()
        } catch let error as CancellationError {
            throw error
        } catch {
            throw AgentServiceError(.listenFailed, "cannot serve the \(name) listener on \(address): \(error)")
        }
    }
}
