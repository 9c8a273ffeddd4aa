import BatonController
import BatonTestSupport
import Foundation
import Testing

/// The history stores the store suite runs against: every test of HistoryStoreTests runs
/// once per kind, so the two implementations are held to one set of semantics.
enum StoreKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite
    case postgres

    var testDescription: String { rawValue }

    /// A fresh, empty store location: a file in a temporary directory, or a new database
    /// on the test process's PostgreSQL server.
    func makeLocation() throws -> StoreLocation {
        switch self {
        case .sqlite: StoreLocation(kind: self, directory: try TemporaryDirectory(prefix: "baton-history"), url: nil)
        case .postgres: StoreLocation(kind: self, directory: nil, url: try PostgresServer.createDatabase())
        }
    }
}

/// Where one test's store lives; `open()` can be called again to reopen it, as a second
/// controller (another connection, another process) would.
struct StoreLocation: Sendable {
    let kind: StoreKind
    let directory: TemporaryDirectory?
    let url: String?

    func open() throws -> any HistoryStore {
        if let url { return try PostgresHistoryStore(PostgresStoreConfiguration(url: url, tls: .disable)) }
        return try SQLiteHistoryStore(path: directory!.child("history.sqlite"))
    }

    /// The database is left to the server, which is removed with its data when the test
    /// process ends.
    func remove() { directory?.remove() }
}
