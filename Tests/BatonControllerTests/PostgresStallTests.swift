@testable import BatonController
import BatonTestSupport
import Foundation
import Synchronization
import Testing

/// A controller stopped in the middle of a transaction (a laptop closed during a rollout)
/// holds its row locks only until the server's idle-in-transaction timeout, and a statement
/// that gets no answer fails at the store's deadline instead of hanging the controller.
@Suite("PostgreSQL: a stalled controller")
struct PostgresStallTests {
    static func configuration(_ url: String, idle: Duration = .seconds(30), deadline: Duration = .seconds(120)) throws -> PostgresStoreConfiguration {
        var configuration = try PostgresStoreConfiguration(url: url, tls: .disable)
        configuration.idleInTransactionTimeout = idle
        configuration.statementDeadline = deadline
        return configuration
    }

    /// Runs `body` on a thread of its own; nil if it has not returned within `limit`.
    static func within<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () -> T) -> T? {
        let result = Mutex<T?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread {
            let value = body()
            result.withLock { $0 = value }
            done.signal()
        }.start()
        let seconds = Double(limit.components.seconds) + Double(limit.components.attoseconds) / 1e18
        guard done.wait(timeout: .now() + seconds) == .success else { return nil }
        return result.withLock { $0 }
    }

    @Test("a transaction left open is cut by the server; the others' writes go through, and the stalled store fails, not hangs")
    func stalledTransaction() throws {
        let url = try PostgresServer.createDatabase()
        let stalled = try PostgresHistoryStore(Self.configuration(url, idle: .seconds(1), deadline: .seconds(5)))
        let other = try PostgresHistoryStore(Self.configuration(url))
        let now = Date()
        let request = LockRequest(app: "web", environment: "production", rolloutID: "r1", owner: "laptop", pid: 1, lease: 600)
        guard case .acquired = try stalled.acquireLock(request, now: now) else {
            Issue.record("the first controller did not get the lock")
            return
        }

        // The stalled controller: takes the lock's row and then does nothing, as a process
        // stopped between two statements of its transaction would.
        let entered = DispatchSemaphore(value: 0)
        let stalledOutcome = Self.within(.seconds(30)) { () -> String in
            do {
                try stalled.sql.transaction { sql in
                    try sql.run("SELECT app FROM locks WHERE app = 'web' AND environment = 'production' FOR UPDATE")
                    entered.signal()
                    Thread.sleep(forTimeInterval: 3)
                    try sql.run("SELECT 1")
                }
                return "committed"
            } catch {
                return "failed: \(PostgresSQL.describe(error))"
            }
        }
        _ = entered.wait(timeout: .now() + 10)

        // Another controller breaks the lock: it needs that row. Without the timeout it would
        // wait the whole 3 s the stalled one sleeps (and, stopped for good, for ever).
        let started = ContinuousClock.now
        let broken = Self.within(.seconds(20)) { Result { () throws(ControllerError) in
            try other.breakLock(app: "web", environment: "production", actor: "ops", reason: "laptop gone", now: Date())
        } }
        let waited = ContinuousClock.now - started
        #expect(broken != nil, "the other controller's write hung")
        if case .failure(let error) = broken { Issue.record("breaking the lock failed: \(error)") }
        #expect(waited < .seconds(2.5), "the other controller waited \(waited): the stalled session was not cut")
        #expect(try other.locks().isEmpty)

        // The stalled controller, running again, finds its session ended: its transaction
        // fails with the server's reason, and so does its next call, at once.
        #expect(stalledOutcome?.hasPrefix("failed") == true, "\(String(describing: stalledOutcome))")
        let next = Self.within(.seconds(20)) { Result { () throws(ControllerError) in try stalled.locks() } }
        #expect(next != nil, "the stalled store's next call hung")
        if case .success = next { Issue.record("the stalled store's session should be over") }
        if case .failure(let error) = next { #expect(error.code == .stateError, "\(error)") }
    }

    @Test("a statement with no answer fails at the store's deadline with a message that says so")
    func deadline() throws {
        let url = try PostgresServer.createDatabase()
        let store = try PostgresHistoryStore(Self.configuration(url, deadline: .seconds(1)))
        let outcome = Self.within(.seconds(20)) { Result { () throws(ControllerError) in
            try store.guarded { try store.sql.run("SELECT pg_sleep(10)") }
        } }
        #expect(outcome != nil, "the statement hung past its deadline")
        guard case .failure(let error) = outcome else {
            Issue.record("a 10 s statement finished under a 1 s deadline")
            return
        }
        #expect(error.code == .stateError)
        #expect(error.message.contains("no answer within 1 s"), "\(error.message)")
        // The store does not go on as if nothing happened: its connection is closed.
        #expect(throws: ControllerError.self) { try store.locks() }
    }

    @Test("the session carries the idle-in-transaction timeout it was configured with")
    func sessionSetting() throws {
        let url = try PostgresServer.createDatabase()
        let store = try PostgresHistoryStore(Self.configuration(url, idle: .milliseconds(2500)))
        let value = try store.sql.run("SHOW idle_in_transaction_session_timeout").rows.first?.decode(String.self)
        #expect(value == "2500ms")
        let defaults = try PostgresHistoryStore(PostgresStoreConfiguration(url: url, tls: .disable))
        #expect(try defaults.sql.run("SHOW idle_in_transaction_session_timeout").rows.first?.decode(String.self) == "30s")
    }
}
