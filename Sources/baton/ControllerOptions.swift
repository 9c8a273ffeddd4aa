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
    /// Set by ``withSharedConnections(to:_:)``.
    var sharedConnections: SharedAgentConnections?

    init(_ options: ControllerOptions) throws(CLIError) {
        configuration = try options.resolve()
        state = ControllerState(root: configuration.stateDirectory)
    }

    var files: ControllerFiles { ControllerFiles(configuration) }

    func fleet() throws(CLIError) -> Fleet {
        do { return try files.fleet() } catch { throw CLIError.reporting(error) }
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
        do { return try files.policy() } catch { throw error.cli }
    }

    func revertKey() throws(CLIError) -> SigningKey? {
        do { return try files.signingKey() } catch { throw CLIError.reporting(error) }
    }

    func app(_ name: String) throws(CLIError) -> AppDefinition {
        do { return try files.app(name) } catch { throw CLIError.reporting(error) }
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
