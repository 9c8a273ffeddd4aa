import BatonController
import BatonTestSupport
import Foundation
import Synchronization
import Testing

/// Many controllers, one PostgreSQL database: each "controller" here is a store of its own
/// with its own connection, on a thread of its own, as separate processes would be.
@Suite("PostgreSQL leases between controllers")
struct PostgresLockTests {
    static func open(_ url: String) throws -> PostgresHistoryStore {
        try PostgresHistoryStore(PostgresStoreConfiguration(url: url, tls: .disable))
    }

    /// Runs `body(i)` for `count` controllers at once, each on its own thread, and waits.
    static func concurrently(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
        let group = DispatchGroup()
        for index in 0..<count {
            group.enter()
            Thread {
                body(index)
                group.leave()
            }.start()
        }
        group.wait()
    }

    @Test("two controllers racing for one app's lock: exactly one wins, every time")
    func twoRacers() throws {
        let url = try PostgresServer.createDatabase()
        let stores = [try Self.open(url), try Self.open(url)]
        let rounds = 20
        let results = Mutex<[Int: [String]]>([:])
        Self.concurrently(2) { index in
            for round in 0..<rounds {
                let request = LockRequest(app: "app\(round)", environment: "production", rolloutID: "r\(index)-\(round)",
                                          owner: "controller\(index)", pid: Int32(index), lease: 60)
                let outcome: String
                switch Result(catching: { () throws(ControllerError) in try stores[index].acquireLock(request, now: Date()) }) {
                case .success(.acquired): outcome = "acquired"
                case .success(.held): outcome = "held"
                case .success(.tookOver): outcome = "took over"
                case .failure(let error): outcome = "failed: \(error)"
                }
                results.withLock { $0[round, default: []].append(outcome) }
            }
        }
        let all = results.withLock { $0 }
        for round in 0..<rounds {
            #expect(all[round]?.sorted() == ["acquired", "held"], "round \(round): \(all[round] ?? [])")
        }
        #expect(try stores[0].locks().count == rounds)
    }

    @Test("20 controllers on 5 apps acquiring, renewing and releasing: never two holders of one lock")
    func manyControllers() throws {
        let url = try PostgresServer.createDatabase()
        let controllers = 20, apps = 5, iterations = 15
        let stores = try (0..<controllers).map { _ in try Self.open(url) }
        let held = Mutex(0)
        let failures = Mutex<[String]>([])
        Self.concurrently(controllers) { index in
            for iteration in 0..<iterations {
                let app = "app\((index + iteration) % apps)"
                let request = LockRequest(app: app, environment: "production", rolloutID: "r\(index)-\(iteration)",
                                          owner: "controller\(index)", pid: Int32(index), lease: 30)
                do {
                    let term: Int
                    switch try stores[index].acquireLock(request, now: Date()) {
                    case .acquired(let t), .tookOver(_, let t): term = t
                    case .held: continue
                    }
                    held.withLock { $0 += 1 }
                    guard try stores[index].renewLock(app: app, environment: "production", rolloutID: request.rolloutID, term: term, lease: 30, now: Date()) else {
                        failures.withLock { $0.append("\(request.rolloutID) lost its live lock (term \(term))") }
                        continue
                    }
                    try stores[index].releaseLock(app: app, environment: "production", rolloutID: request.rolloutID, term: term, now: Date())
                } catch {
                    failures.withLock { $0.append("\(request.rolloutID): \(error)") }
                }
            }
        }
        #expect(failures.withLock { $0 } == [])
        let events = try stores[0].lockEvents(app: nil)
        // The store's own record, per app, must be a chain of non-overlapping holds: an
        // acquisition only while nobody holds the lock, a release only by the holder, terms
        // only growing.
        for index in 0..<apps {
            let app = "app\(index)"
            var holder: (rolloutID: String, term: Int)?
            var lastTerm = 0
            for event in events where event.app == app {
                let term = Int(event.detail?.split(separator: " ").last ?? "") ?? -1
                switch event.action {
                case "acquired":
                    #expect(holder == nil, "\(app): \(event.rolloutID ?? "") acquired while \(holder?.rolloutID ?? "") held it")
                    #expect(term > lastTerm, "\(app): term \(term) after \(lastTerm)")
                    holder = (event.rolloutID ?? "", term)
                    lastTerm = term
                case "released":
                    #expect(holder?.rolloutID == event.rolloutID && holder?.term == term, "\(app): \(event.rolloutID ?? "") released a lock it did not hold")
                    holder = nil
                default:
                    Issue.record("\(app): unexpected \(event.action) (no lease ran out): \(event.detail ?? "")")
                }
            }
            #expect(holder == nil, "\(app) still held at the end")
        }
        let acquisitions = events.filter { $0.action == "acquired" }.count
        #expect(acquisitions == held.withLock { $0 } && acquisitions > 0)
        #expect(try stores[0].locks().isEmpty)
    }

    @Test("a holder whose lease ran out loses its renewal, and another takes over under a higher term")
    func expiredHolder() throws {
        let url = try PostgresServer.createDatabase()
        let first = try Self.open(url), second = try Self.open(url)
        let a = LockRequest(app: "web", environment: "production", rolloutID: "r-a", owner: "laptop", pid: 1, lease: 1)
        let b = LockRequest(app: "web", environment: "production", rolloutID: "r-b", owner: "runner", pid: 2, lease: 60)
        #expect(try first.acquireLock(a, now: Date()) == .acquired(term: 1))
        if case .held = try second.acquireLock(b, now: Date()) {} else { Issue.record("a live lease was taken") }
        Thread.sleep(forTimeInterval: 1.3)
        guard case .tookOver(let previous, let term) = try second.acquireLock(b, now: Date()) else {
            Issue.record("no takeover after the lease ran out")
            return
        }
        #expect(previous.rolloutID == "r-a" && term == 2)
        // The first controller wakes up: it does not hold the lock any more, whatever it thinks.
        #expect(try !first.renewLock(app: "web", environment: "production", rolloutID: "r-a", term: 1, lease: 60, now: Date()))
        try first.releaseLock(app: "web", environment: "production", rolloutID: "r-a", term: 1, now: Date())
        #expect(try first.locks().map(\.rolloutID) == ["r-b"])
        #expect(try second.lockEvents(app: "web").map(\.action) == ["acquired", "taken_over"])
        // A caller's clock far off does not matter: the lease is the database's.
        let holder = try #require(try first.locks().first)
        #expect(try first.acquireLock(a, now: Date().addingTimeInterval(3600)) == .held(holder))
    }

    @Test("migrations are applied once and reported, even with controllers starting together")
    func migrations() throws {
        let url = try PostgresServer.createDatabase()
        let opened = Mutex<[String]>([])
        Self.concurrently(4) { _ in
            do { _ = try Self.open(url) } catch { opened.withLock { $0.append("\(error)") } }
        }
        #expect(opened.withLock { $0 } == [])
        let applied = try Self.open(url).migrations()
        // Each once, in order, whichever controller applied it. Ids need not be contiguous
        // (migrations are numbered as they are written, on more than one branch).
        let ids = applied.map(\.id)
        #expect(ids.first == 1 && ids == ids.sorted() && Set(ids).count == ids.count, "\(ids)")
        #expect(Set([3, 4, 5]).isSubset(of: ids), "the releases, drills and receipts migrations: \(ids)")
        #expect(applied.allSatisfy { !$0.name.isEmpty })
    }
}
