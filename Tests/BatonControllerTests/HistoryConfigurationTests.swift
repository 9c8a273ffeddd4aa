import BatonController
import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

@Suite("Choosing the history store")
struct HistoryConfigurationTests {
    func configuration(_ yaml: String, environment: [String: String] = [:]) throws -> ControllerConfiguration {
        let dir = try TemporaryDirectory(prefix: "baton-history-config")
        defer { dir.remove() }
        try yaml.write(toFile: dir.child("baton.yaml"), atomically: true, encoding: .utf8)
        return try ControllerConfiguration.resolve(
            .init(), environment: environment.merging(["BATON_CONFIG": dir.child("baton.yaml")]) { $1 }, workingDirectory: dir.path)
    }

    @Test("SQLite unless baton.yaml or BATON_HISTORY_POSTGRES names a database")
    func choice() throws {
        #expect(try configuration("stateDir: s\n").history == .sqlite)
        #expect(try configuration("history: sqlite\n").history == .sqlite)
        guard case .postgres(let database) = try configuration("""
            history: {postgres: "postgres://baton@db.internal:6543/teamdb", passwordFile: secret, tls: disable}
            """).history else {
            Issue.record("not postgres")
            return
        }
        #expect(database.host == "db.internal" && database.port == 6543 && database.user == "baton" && database.database == "teamdb")
        #expect(database.tls == .disable && database.passwordFile?.hasSuffix("/secret") == true && database.password == nil)
        // The variable replaces the file's URL and keeps its password file and TLS mode.
        guard case .postgres(let overridden) = try configuration(
            "history: {postgres: \"postgres://baton@db/baton\", tls: disable}\n",
            environment: ["BATON_HISTORY_POSTGRES": "postgres://ci@other:5433/ci"]).history else {
            Issue.record("not postgres")
            return
        }
        #expect(overridden.host == "other" && overridden.user == "ci" && overridden.tls == .disable)
        // TLS is required unless said otherwise.
        guard case .postgres(let fromVariable) = try configuration("stateDir: s\n", environment: ["BATON_HISTORY_POSTGRES": "postgres://ci@db/baton"]).history,
              case .postgres(let plain) = try configuration("stateDir: s\n", environment: ["BATON_HISTORY_POSTGRES": "postgres://ci@db/baton?sslmode=disable"]).history
        else {
            Issue.record("not postgres")
            return
        }
        #expect(fromVariable.tls == .require && fromVariable.port == 5432 && plain.tls == .disable)
    }

    @Test("a history entry that cannot be used is refused, saying why")
    func refused() throws {
        for (yaml, message) in [
            ("history: mysql\n", "sqlite"),
            ("history: {postgres: \"postgres://baton@db/baton\", tls: maybe}\n", "require"),
            ("history: {postgres: \"http://baton@db/baton\"}\n", "postgres://"),
            ("history: {postgres: \"postgres://baton@db\"}\n", "names no database"),
            ("history: {postgres: \"postgres://baton@db/b\", password: x}\n", "password"),
        ] {
            #expect { try configuration(yaml) } throws: { error in
                "\(error)".contains(message)
            }
        }
    }

    @Test("a password file's first line is the password; the URL's password never shows in messages")
    func password() throws {
        let store = try PostgresStoreConfiguration(url: "postgres://baton:hunter2@127.0.0.1:1/baton", tls: .disable)
        #expect(store.password == "hunter2" && !store.description.contains("hunter2"))
        #expect(throws: ControllerError.self) { try PostgresStoreConfiguration(url: "postgres://baton:hunter2@db/", tls: .disable) }
        do {
            _ = try PostgresStoreConfiguration(url: "postgres://baton:hunter2@db/", tls: .disable)
        } catch {
            #expect(!error.message.contains("hunter2"))
        }
    }

    @Test("an unreachable database is a state_error naming it, without the password")
    func unreachable() throws {
        let store = try PostgresStoreConfiguration(url: "postgres://baton:hunter2@127.0.0.1:1/baton", tls: .disable)
        do {
            _ = try PostgresHistoryStore(store)
            Issue.record("connected to port 1")
        } catch {
            #expect(error.code == .stateError && error.message.contains("postgres://baton@127.0.0.1:1/baton"))
            #expect(!error.message.contains("hunter2"))
        }
    }
}
