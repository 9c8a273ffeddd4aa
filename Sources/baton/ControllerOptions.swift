import ArgumentParser
import BatonCLISupport
import BatonController
import BatonProtocol
import Foundation

/// Where the controller's files are: `baton.yaml`, then `BATON_*` variables, then these flags.
struct ControllerOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The controller configuration (default: ./baton.yaml if present; BATON_CONFIG).", valueName: "file"))
    var config: String?
    @Option(help: ArgumentHelp("The fleet file (BATON_FLEET).", valueName: "file")) var fleet: String?
    @Option(help: ArgumentHelp("The directory of app files (BATON_APPS).", valueName: "dir")) var apps: String?
    @Option(name: .customLong("trust-policy"), help: ArgumentHelp("The trust policy agents use (BATON_TRUST_POLICY).", valueName: "file"))
    var trustPolicy: String?
    @Option(name: .customLong("state-dir"), help: ArgumentHelp("The controller's state directory (BATON_STATE_DIR; default ~/.local/state/baton).", valueName: "dir"))
    var stateDir: String?
    @Option(help: ArgumentHelp("The controller's TLS certificate (BATON_TLS_CERT).", valueName: "file")) var cert: String?
    @Option(name: .customLong("tls-key"), help: ArgumentHelp("The controller's TLS private key (BATON_TLS_KEY).", valueName: "file"))
    var tlsKey: String?
    @Option(help: ArgumentHelp("The fleet CA certificate (BATON_TLS_CA).", valueName: "file")) var ca: String?
    @Option(name: .customLong("signing-key"), help: ArgumentHelp("The controller's Ed25519 key, which signs reverts (BATON_SIGNING_KEY).", valueName: "file"))
    var signingKey: String?

    func resolve() throws(CLIError) -> ControllerConfiguration {
        var overrides = ControllerConfiguration.Overrides()
        overrides.config = config
        overrides.fleet = fleet
        overrides.apps = apps
        overrides.trustPolicy = trustPolicy
        overrides.stateDir = stateDir
        overrides.certificate = cert
        overrides.key = tlsKey
        overrides.ca = ca
        overrides.signingKey = signingKey
        do {
            return try ControllerConfiguration.resolve(overrides)
        } catch {
            throw error.cli
        }
    }
}

/// Checks the names an operator typed (`("web", "app")`, `(release, "release")`; nil
/// skipped) by the one naming rule, before a file is read or an agent contacted.
func checkNames(_ names: (String?, String)...) throws(CLIError) {
    for case let (name?, what) in names {
        do { try ControllerError.checkName(name, what) } catch { throw error.cli }
    }
}

/// Any error from a mixed `do` block, as the CLI reports it (`CLIError.reporting`, the
/// one mapping: coded errors keep their code, with the usage exit status).
func cliError(_ error: any Error) -> CLIError {
    CLIError.reporting(error)
}

/// The pieces most controller commands load, each failing with one clear line.
struct ControllerContext {
    let configuration: ControllerConfiguration
    let state: ControllerState

    init(_ options: ControllerOptions) throws(CLIError) {
        configuration = try options.resolve()
        state = ControllerState(root: configuration.stateDirectory)
    }

    func fleet() throws(CLIError) -> Fleet {
        let path: String
        do { path = try configuration.requireFleet() } catch { throw error.cli }
        guard FileManager.default.fileExists(atPath: path) else {
            throw CLIError(.fileNotFound, "the fleet file '\(path)' does not exist")
        }
        let fleet: Fleet
        do { fleet = try Fleet.load(path) } catch { throw error.cli }
        // Checked before anything is contacted; without a policy there is nothing to check against.
        if let policyPath = configuration.trustPolicyPath, let policy = try self.policy() {
            do { try fleet.checkEnvironments(in: policy, fleetFile: path, policyFile: policyPath) } catch { throw error.cli }
        }
        return fleet
    }

    /// The history store: SQLite in the state directory, or the shared PostgreSQL database
    /// `history:` (or BATON_HISTORY_POSTGRES) names.
    func history() throws(CLIError) -> any HistoryStore {
        do {
            try state.prepare()
            if case .postgres(let database) = configuration.history { return try PostgresHistoryStore(database) }
            return try SQLiteHistoryStore(path: "\(state.root)/history.sqlite")
        } catch {
            throw error.cli
        }
    }

    func policy() throws(CLIError) -> TrustPolicy? {
        guard let path = configuration.trustPolicyPath else { return nil }
        do { return try TrustPolicyFile.load(path) } catch { throw error.cli }
    }

    func revertKey() throws(CLIError) -> SigningKey? {
        guard let path = configuration.signingKeyPath else { return nil }
        return try loadSigningKey(path)
    }

    func app(_ name: String) throws(CLIError) -> AppDefinition {
        do {
            let file = try configuration.appFile(name)
            return try AppDefinition.load(file, for: name)
        } catch let error as any CodedError {
            throw error.cli
        } catch {
            throw ControllerError(.appUnknown, "\(error)").cli
        }
    }

    /// A client for `hosts`, shut down after `body` on every path. The controller's own
    /// files are checked before any agent is contacted: their mistakes are its own fault.
    func withAgentClient<Result>(
        for hosts: [Fleet.Host], retry: RetryPolicy = RetryPolicy(), _ body: (HTTPAgentClient) async throws -> Result
    ) async throws -> Result {
        try await BatonController.withAgentClient(try client(for: hosts, retry: retry), body)
    }

    func client(for hosts: [Fleet.Host], retry: RetryPolicy = RetryPolicy()) throws(CLIError) -> HTTPAgentClient {
        do { return try configuration.agentClient(for: hosts, retry: retry) } catch { throw error.cli }
    }
}

/// Which hosts of the environment: `--hosts a,b`, `--selector role=web`.
struct SelectionOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Only these hosts (comma-separated ids).", valueName: "ids")) var hosts: String?
    @Option(help: ArgumentHelp("Only hosts whose labels match all of these.", valueName: "key=value,...")) var selector: String?

    var hostIDs: [String]? {
        hosts.map { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } }
    }

    /// The hosts of `fleet` these options (and `environment`) select; none is `no_hosts`.
    func hosts(in fleet: Fleet, environment: String?) throws(CLIError) -> [Fleet.Host] {
        let hosts: [Fleet.Host]
        do {
            hosts = try HostSelection(environment: environment, hostIDs: hostIDs, selector: try labels()).hosts(in: fleet)
        } catch let error as ConfigurationError {
            throw error.cli
        } catch {
            throw CLIError(.invalidSelection, "\(error)")
        }
        guard !hosts.isEmpty else {
            throw ControllerError(
                .noHosts,
                environment.map { "the fleet has no host in '\($0)' matching the selection" } ?? "no host of the fleet matches the selection"
            ).cli
        }
        return hosts
    }

    func labels() throws(CLIError) -> [String: String] {
        guard let selector else { return [:] }
        guard let parsed = HostSelection.parseSelector(selector) else {
            throw CLIError(.invalidSelector, "'\(selector)' is not key=value[,key=value...]")
        }
        return parsed
    }
}

/// How the rollout walks the fleet. Values are typed (counts, `n|p%`, durations); the
/// rules between them are the library's (`RolloutStrategy.validate`), checked in `validate()`.
struct StrategyOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Deploy this many hosts first, alone; any failure among them halts.", valueName: "n")) var canary: Int = 0
    @Flag(name: .customLong("pause-after-canary"), help: "Stop after a healthy canary until `baton rollout resume` or `abort`.")
    var pauseAfterCanary = false
    @Option(help: ArgumentHelp("Hosts per batch after the canary (default: all the rest).", valueName: "n|p%")) var batch: HostCount?
    @Option(help: ArgumentHelp("Hosts deploying at once within a batch (default: the whole batch).", valueName: "n")) var parallel: Int?
    @Option(name: .customLong("max-unavailable"), help: ArgumentHelp("Hosts that may be deploying or failed at once.", valueName: "n|p%"))
    var maxUnavailable: HostCount?
    @Option(name: .customLong("failure-threshold"), help: ArgumentHelp("Failed hosts tolerated before halting; unreachable hosts count.", valueName: "n|p%"))
    var failureThreshold: HostCount = .hosts(0)
    @Option(help: ArgumentHelp("Wait between batches, e.g. 30s or 2m.", valueName: "duration")) var pause: BatonDuration?
    @Flag(name: .customLong("no-auto-revert"), help: "On a halt, leave switched hosts on the new release.") var noAutoRevert = false
    @Option(name: .customLong("upload-parallel"), help: ArgumentHelp("Artifact uploads at once (default: no bound); hosts still deploy --parallel wide.", valueName: "n"))
    var uploadParallel: Int?

    func validate() throws {
        _ = try strategy()
    }

    func strategy() throws(CLIError) -> RolloutStrategy {
        var strategy = RolloutStrategy()
        strategy.canary = canary
        strategy.pauseAfterCanary = pauseAfterCanary
        strategy.batch = batch
        strategy.parallel = parallel
        strategy.maxUnavailable = maxUnavailable
        strategy.failureThreshold = failureThreshold
        strategy.pause = pause
        strategy.autoRevert = !noAutoRevert
        strategy.uploadParallel = uploadParallel
        do { try strategy.validate() } catch { throw error.cli }
        return strategy
    }
}

struct OutputOptions: ParsableArguments {
    @Flag(help: "Write newline-delimited JSON events and a final summary object.") var json = false
    @Flag(help: "One line per event even on a terminal (no live table).") var plain = false
    @Flag(help: "One line per host per phase change (and every error), not per event, when not drawing a table.") var brief = false

    func renderer(hosts: [String]) -> any ProgressRenderer {
        let write: @Sendable (String) -> Void = { Output.write($0) }
        if json { return JSONRenderer(write: write) }
        let isTTY = isatty(STDOUT_FILENO) == 1
        let palette = Palette.forTerminal(isTTY: isTTY)
        if isTTY, !plain {
            var size = winsize()
            let columns = ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0 && size.ws_col > 0 ? Int(size.ws_col) : 120
            return TableRenderer(hosts: hosts, palette: palette, width: columns, write: write)
        }
        return LineRenderer(palette: palette, brief: brief, write: write)
    }
}
