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
    let statementDeadline: TimeAmount
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
        statementDeadline = .nanoseconds(Int64(configuration.statementDeadline.components.seconds) * 1_000_000_000
            + configuration.statementDeadline.components.attoseconds / 1_000_000_000)
        // A whole number of milliseconds of our own: SET takes no bound parameters.
        let idle = configuration.idleInTransactionTimeout.components
        let idleMilliseconds = max(1, idle.seconds * 1000 + idle.attoseconds / 1_000_000_000_000_000)
        do {
            try run(PostgresQuery(unsafeSQL: "SET idle_in_transaction_session_timeout = \(idleMilliseconds)"))
        } catch {
            throw ControllerError(.stateError, "cannot set up the session with the history database \(configuration.description): \(Self.describe(error))")
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
        if let error = error as? StatementDeadlineExceeded { return error.description }
        if let error = error as? ConnectionClosed { return error.description }
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
            let statements = Statements(connection: connection, logger: logger, deadline: statementDeadline)
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
        try lock.withLock { try Statements(connection: connection, logger: logger, deadline: statementDeadline).run(query) }
    }

    struct Statements {
        let connection: PostgresConnection
        let logger: Logger
        let deadline: TimeAmount

        /// Waits for the statement at most `deadline`, then closes the connection: the
        /// statement fails, and so does every later one on this store. A blocking `wait()`
        /// cannot be cancelled otherwise, and one that never returns hangs the controller
        /// (as a query on a session the server had ended did).
        @discardableResult
        func run(_ query: PostgresQuery) throws -> PostgresQueryResult {
            let connection = self.connection
            // Ended by the server (a stopped controller's session cut for idling inside a
            // transaction) or given up at a deadline: fail at once, not after a deadline more.
            guard !connection.isClosed else { throw ConnectionClosed() }
            // The caller waits on a promise of its own, completed by the answer or by the
            // deadline, whichever comes first: a statement sent on a connection the server
            // had already closed was never answered, so closing that connection again would
            // not end the wait.
            let answer = connection.eventLoop.makePromise(of: PostgresQueryResult.self)
            let settled = NIOLockedValueBox(false)
            let settle: @Sendable (Result<PostgresQueryResult, any Error>) -> Void = { result in
                let first = settled.withLockedValue { done in
                    defer { done = true }
                    return !done
                }
                if first { answer.completeWith(result) }
            }
            let deadline = self.deadline
            let watchdog = connection.eventLoop.scheduleTask(in: deadline) {
                settle(.failure(StatementDeadlineExceeded(deadline: deadline)))
                connection.close().whenComplete { _ in withExtendedLifetime(connection) {} }
            }
            defer { watchdog.cancel() }
            connection.query(query, logger: logger).whenComplete(settle)
            return try answer.futureResult.wait()
        }
    }

    struct ConnectionClosed: Error, CustomStringConvertible {
        var description: String {
            "the connection is closed: the server ended this controller's session (one idle inside a transaction is ended after idle_in_transaction_session_timeout), or a statement got no answer before; run the command again"
        }
    }

    struct StatementDeadlineExceeded: Error, CustomStringConvertible {
        let deadline: TimeAmount
        var description: String {
            "no answer within \(deadline.nanoseconds / 1_000_000_000) s; the connection was closed (is the database up and reachable?)"
        }
    }
}
