import BatonController
import Foundation
import Synchronization
import Testing

/// A benchmark, not a test: lock acquire/renew/release latency, and contended throughput
/// with N controllers on one app, on SQLite and PostgreSQL side by side in one run.
/// Opt-in (`bench/locks.sh`, or `BATON_BENCH_LOCKS=1`); it prints figures and checks only
/// that every cycle did what a lock must (one holder), never how fast.
@Suite(.serialized, .enabled(if: ProcessInfo.processInfo.environment["BATON_BENCH_LOCKS"] != nil))
struct LockLatencyBench {
    static let rounds = Int(ProcessInfo.processInfo.environment["BATON_BENCH_ROUNDS"] ?? "") ?? 300
    static let controllers = Int(ProcessInfo.processInfo.environment["BATON_BENCH_CONTROLLERS"] ?? "") ?? 4

    static func request(_ app: String, _ id: String) -> LockRequest {
        LockRequest(app: app, environment: "staging", rolloutID: id, owner: "bench@host", pid: getpid(), lease: 60)
    }

    static func percentile(_ sorted: [Double], _ p: Double) -> Double {
        sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
    }

    @Test func acquireRenewReleaseSideBySide() throws {
        var lines = ["store     cycles  acquire p50/p95 ms  renew p50/p95 ms  release p50/p95 ms  contended acquisitions/s (\(Self.controllers) controllers)"]
        for kind in StoreKind.allCases {
            let location = try kind.makeLocation()
            defer { location.remove() }
            let store = try location.open()
            var acquire: [Double] = [], renew: [Double] = [], release: [Double] = []
            let clock = ContinuousClock()
            for round in 0..<Self.rounds {
                let id = "r\(round)"
                var term = 0
                let a = clock.measure {
                    if case .acquired(let t) = try? store.acquireLock(Self.request("web", id), now: Date()) { term = t }
                }
                #expect(term > 0, "round \(round) did not acquire a free lock")
                let r = clock.measure {
                    #expect((try? store.renewLock(app: "web", environment: "staging", rolloutID: id, term: term, lease: 60, now: Date())) == true)
                }
                let l = clock.measure { try? store.releaseLock(app: "web", environment: "staging", rolloutID: id, term: term, now: Date()) }
                acquire.append(a.milliseconds)
                renew.append(r.milliseconds)
                release.append(l.milliseconds)
            }
            let throughput = try Self.contended(location)
            func figures(_ values: [Double]) -> String {
                let sorted = values.sorted()
                return String(format: "%.2f / %.2f", Self.percentile(sorted, 0.5), Self.percentile(sorted, 0.95))
            }
            lines.append([
                kind.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0), String(Self.rounds).padding(toLength: 7, withPad: " ", startingAt: 0),
                figures(acquire).padding(toLength: 19, withPad: " ", startingAt: 0), figures(renew).padding(toLength: 17, withPad: " ", startingAt: 0),
                figures(release).padding(toLength: 19, withPad: " ", startingAt: 0), String(format: "%.0f", throughput),
            ].joined(separator: " "))
        }
        print(lines.joined(separator: "\n"))
    }

    /// N controllers, each with its own store (connection), taking and releasing one
    /// app's lock as fast as they can for two seconds: acquisitions per second in all.
    static func contended(_ location: StoreLocation) throws -> Double {
        let stores = try (0..<controllers).map { _ in try location.open() }
        let acquired = Mutex(0)
        let deadline = Date().addingTimeInterval(2)
        let group = DispatchGroup()
        for (index, store) in stores.enumerated() {
            group.enter()
            Thread {
                var round = 0
                while Date() < deadline {
                    round += 1
                    let id = "c\(index)-\(round)"
                    if case .acquired(let term) = try? store.acquireLock(request("contended", id), now: Date()) {
                        acquired.withLock { $0 += 1 }
                        try? store.releaseLock(app: "contended", environment: "staging", rolloutID: id, term: term, now: Date())
                    }
                }
                group.leave()
            }.start()
        }
        group.wait()
        // Every acquisition was released by its holder before the next: the store's events say so.
        let events = try stores[0].lockEvents(app: "contended")
        #expect(events.filter { $0.action == "acquired" }.count == acquired.withLock { $0 })
        return Double(acquired.withLock { $0 }) / 2
    }
}

extension Duration {
    var milliseconds: Double { Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15 }
}
