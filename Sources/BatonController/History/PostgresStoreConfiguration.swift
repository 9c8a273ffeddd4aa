import BatonProtocol
import Foundation

/// Which history store a controller uses: `<state>/history.sqlite` unless `baton.yaml`
/// (`history: {postgres: URL, passwordFile: FILE, tls: require|disable}`) or
/// `BATON_HISTORY_POSTGRES` names a shared PostgreSQL database.
public enum HistoryConfiguration: Sendable, Equatable {
    case sqlite
    case postgres(PostgresStoreConfiguration)
}

/// Where the shared store is and how to reach it.
public struct PostgresStoreConfiguration: Sendable, Equatable {
    public enum TLSMode: String, Sendable, Equatable, CaseIterable {
        /// Refuse a server that does not speak TLS; the server's certificate is checked
        /// against the system's roots and its host name.
        case require
        /// Plain TCP: a database on loopback or a private network the team trusts.
        case disable
    }

    public var host: String
    public var port: Int
    public var user: String
    public var database: String
    /// From the URL (discouraged: `baton.yaml` is shared) or read from `passwordFile`.
    public var password: String?
    public var passwordFile: String?
    public var tls: TLSMode
    /// How long the server lets this controller's session sit idle inside a transaction
    /// before it ends the session (`idle_in_transaction_session_timeout`). A controller
    /// stopped mid-transaction (a laptop closed during a rollout, a SIGSTOP) would otherwise
    /// keep its row locks, and every controller waiting on them, until it runs again. The
    /// controller's own transactions never pause between statements, so only a stopped one
    /// is cut; it finds its connection closed when it resumes, and fails with `state_error`.
    public var idleInTransactionTimeout: Duration = .seconds(30)
    /// The longest one statement may go unanswered before the controller gives up the
    /// connection: a server or network that stopped answering, or a session the server
    /// ended that the client did not notice. Longer than any lock wait the timeout above
    /// allows.
    public var statementDeadline: Duration = .seconds(120)

    /// Parses `postgres://user[:password]@host[:port]/database[?sslmode=require|disable]`
    /// (`postgresql://` too). `tls` wins over the URL's `sslmode`; without either, TLS is required.
    public init(url: String, passwordFile: String? = nil, tls: TLSMode? = nil) throws(ControllerError) {
        guard let components = URLComponents(string: url), ["postgres", "postgresql"].contains(components.scheme ?? ""),
              let host = components.host, !host.isEmpty, let user = components.user, !user.isEmpty
        else {
            throw ControllerError(.configurationInvalid, "the history database '\(Self.redacted(url))' is not a postgres://user@host[:port]/database URL")
        }
        let database = String(components.path.drop { $0 == "/" })
        guard !database.isEmpty, !database.contains("/") else {
            throw ControllerError(.configurationInvalid, "the history database URL '\(Self.redacted(url))' names no database (postgres://user@host/DATABASE)")
        }
        self.host = host
        self.port = components.port ?? 5432
        self.user = user
        self.database = database
        self.password = components.password
        self.passwordFile = passwordFile
        let sslmode = components.queryItems?.first { $0.name == "sslmode" }?.value
        if let sslmode, TLSMode(rawValue: sslmode) == nil {
            throw ControllerError(.configurationInvalid, "the history database URL's sslmode is `require` or `disable`, not '\(sslmode)'")
        }
        self.tls = tls ?? sslmode.flatMap(TLSMode.init(rawValue:)) ?? .require
    }

    /// The URL without its password, for messages.
    public var description: String { "postgres://\(user)@\(host):\(port)/\(database)" }

    static func redacted(_ url: String) -> String {
        guard var components = URLComponents(string: url), components.password != nil else { return url }
        components.password = "***"
        return components.string ?? url
    }

    /// The password to send: the file's first line (so `echo secret > file` works), else the URL's.
    func resolvedPassword() throws(ControllerError) -> String? {
        guard let passwordFile else { return password }
        guard let data = FileManager.default.contents(atPath: passwordFile) else {
            throw ControllerError(.configurationInvalid, "cannot read the history database's password file '\(passwordFile)'")
        }
        return String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
    }
}

extension HistoryConfiguration {
    /// The `history:` entry of `baton.yaml`: `sqlite`, or
    /// `{postgres: URL, passwordFile: FILE, tls: require|disable}`.
    static func parse(_ node: YAMLValue, file: String, absolute: (String) -> String) throws(ConfigurationError) -> HistoryConfiguration {
        if let word = try? node.string() {
            guard word == "sqlite" else {
                throw ConfigurationError(.invalidValue, "history: is `sqlite` or {postgres: URL, passwordFile: FILE, tls: require|disable}", file: file)
            }
            return .sqlite
        }
        let entry = try node.mapping()
        try entry.allowOnly(["postgres", "passwordFile", "tls", "lease"])
        // `{lease: 20s}` alone: the default SQLite store with another lock lease (RolloutLease).
        if entry["postgres"] == nil, entry["passwordFile"] == nil, entry["tls"] == nil, entry["lease"] != nil { return .sqlite }
        let url = try entry.require("postgres").string()
        let passwordFile = try entry["passwordFile"].map { node throws(ConfigurationError) in absolute(try node.string()) }
        var tls = PostgresStoreConfiguration.TLSMode.require
        if let node = entry["tls"] {
            let word = try node.string()
            guard let mode = PostgresStoreConfiguration.TLSMode(rawValue: word) else {
                throw ConfigurationError(.invalidValue, "history.tls is `require` or `disable`, not '\(word)'", file: file)
            }
            tls = mode
        }
        do {
            return .postgres(try PostgresStoreConfiguration(url: url, passwordFile: passwordFile, tls: tls))
        } catch {
            throw ConfigurationError(.invalidValue, error.message, file: file)
        }
    }

    /// `BATON_HISTORY_POSTGRES` names the database instead of the file's URL (keeping the
    /// file's password file and TLS mode, if it had a postgres entry).
    func overridden(by environment: [String: String]) throws(ConfigurationError) -> HistoryConfiguration {
        guard let url = environment["BATON_HISTORY_POSTGRES"], !url.isEmpty else { return self }
        var passwordFile: String?
        var tls: PostgresStoreConfiguration.TLSMode?
        if case .postgres(let current) = self {
            passwordFile = current.passwordFile
            tls = current.tls
        }
        do {
            return .postgres(try PostgresStoreConfiguration(url: url, passwordFile: passwordFile, tls: tls))
        } catch {
            throw ConfigurationError(.invalidValue, "BATON_HISTORY_POSTGRES: \(error.message)")
        }
    }
}
