import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO

/// One connection to the shared store, used synchronously.
///
/// `HistoryStore` is synchronous (the SQLite store blocks on its file too), and postgres-nio
/// is asynchronous. The bridge waits on postgres-nio's `EventLoopFuture`s, which run on
/// NIO's own event-loop threads, never on Swift's cooperative pool: a caller blocked in
/// `wait()` (possibly on a cooperative thread) therefore never waits for work that needs
/// that pool, so the bridge cannot deadlock however many stores wait at once. Callers must
/// not be on an event loop (none are: the rollout engine calls from tasks).
///
/// One statement or transaction at a time per connection (`lock`): a transaction's
/// statements must not interleave with another caller's.
final class PostgresSQL: Sendable {
    let connection: PostgresConnection
    let logger: Logger
    private let lock = NIOLock()

    init(_ configuration: PostgresStoreConfiguration) throws(ControllerError) {
        let password = try configuration.resolvedPassword()
        let tls: PostgresConnection.Configuration.TLS
        switch configuration.tls {
        case .disable:
            tls = .disable
        case .require:
            do {
                tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
            } catch {
                throw ControllerError(.stateError, "cannot set up TLS to the history database: \(error)")
            }
        }
        var connectionConfiguration = PostgresConnection.Configuration(
            host: configuration.host, port: configuration.port, username: configuration.user, password: password,
            database: configuration.database, tls: tls)
        connectionConfiguration.options.connectTimeout = .seconds(10)
        logger = Logger(label: "baton-history-postgres")
        do {
            connection = try PostgresConnection.connect(
                on: MultiThreadedEventLoopGroup.singleton.any(), configuration: connectionConfiguration, id: 1, logger: logger
            ).wait()
        } catch {
            throw ControllerError(.stateError, "cannot connect to the history database \(configuration.description): \(Self.describe(error))")
        }
    }

    /// Closes without waiting (a deinit may run anywhere); the closure keeps the connection
    /// alive until it is closed, which postgres-nio requires.
    deinit {
        let connection = self.connection
        connection.close().whenComplete { _ in withExtendedLifetime(connection) {} }
    }

    /// PSQLError's own description hides the server's message (it may hold data); the
    /// server's message is what an operator needs here, and the store's data is no secret
    /// from its own controller.
    static func describe(_ error: any Error) -> String {
        guard let error = error as? PSQLError else { return "\(error)" }
        if let message = error.serverInfo?[.message] {
            let detail = error.serverInfo?[.detail].map { " (\($0))" } ?? ""
            return "\(message)\(detail)"
        }
        return String(reflecting: error)
    }

    /// Runs `body` in one transaction (BEGIN … COMMIT; ROLLBACK when it throws).
    func transaction<T>(_ body: (Statements) throws -> T) throws -> T {
        try lock.withLock {
            let statements = Statements(connection: connection, logger: logger)
            try statements.run("BEGIN")
            do {
                let result = try body(statements)
                try statements.run("COMMIT")
                return result
            } catch {
                _ = try? statements.run("ROLLBACK")
                throw error
            }
        }
    }

    /// One statement on its own (its own transaction).
    @discardableResult
    func run(_ query: PostgresQuery) throws -> PostgresQueryResult {
        try lock.withLock { try Statements(connection: connection, logger: logger).run(query) }
    }

    struct Statements {
        let connection: PostgresConnection
        let logger: Logger

        @discardableResult
        func run(_ query: PostgresQuery) throws -> PostgresQueryResult {
            try connection.query(query, logger: logger).wait()
        }
    }
}
