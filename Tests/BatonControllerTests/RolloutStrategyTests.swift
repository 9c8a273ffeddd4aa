@testable import BatonController
import BatonProtocol
import Foundation
import Testing

@Suite("Rollout strategy")
struct RolloutStrategyTests {
    @Test("counts: hosts or percentages rounded up; nonsense refused", arguments: [
        ("3", 10, 3), ("25%", 10, 3), ("10%", 5, 1), ("100%", 7, 7), ("0", 9, 0), ("0%", 9, 0),
    ])
    func counts(text: String, total: Int, expected: Int) throws {
        #expect(try #require(HostCount(text)).resolve(total: total) == expected)
    }

    @Test("invalid counts", arguments: ["", "-1", "101%", "x", "1.5", "%"])
    func invalidCounts(text: String) {
        #expect(HostCount(text) == nil)
    }

    @Test("waves: the canary alone, then batches of the rest in order")
    func waves() {
        var strategy = RolloutStrategy()
        strategy.canary = 1
        strategy.batch = .hosts(2)
        #expect(strategy.waves(hostCount: 6).map(\.hosts) == [[0], [1, 2], [3, 4], [5]])
        #expect(strategy.waves(hostCount: 6).map(\.name) == ["canary", "batch 1", "batch 2", "batch 3"])
        strategy.batch = .percent(50)
        #expect(strategy.waves(hostCount: 4).map(\.hosts) == [[0], [1, 2], [3]])
        strategy.batch = nil
        #expect(strategy.waves(hostCount: 4).map(\.hosts) == [[0], [1, 2, 3]])
        strategy.canary = 9
        #expect(strategy.waves(hostCount: 3).map(\.hosts) == [[0, 1, 2]])
    }

    @Test("width: parallelism and max-unavailable, which failures use up")
    func width() {
        var strategy = RolloutStrategy()
        #expect(strategy.width(waveSize: 10, total: 10, failedSoFar: 0) == 10)
        strategy.parallel = 3
        #expect(strategy.width(waveSize: 10, total: 10, failedSoFar: 0) == 3)
        strategy.maxUnavailable = .hosts(2)
        #expect(strategy.width(waveSize: 10, total: 10, failedSoFar: 0) == 2)
        #expect(strategy.width(waveSize: 10, total: 10, failedSoFar: 1) == 1)
        #expect(strategy.width(waveSize: 10, total: 10, failedSoFar: 2) == 0)
    }

    @Test("the failure threshold is exceeded only past it")
    func threshold() {
        var strategy = RolloutStrategy()
        #expect(!strategy.exceedsThreshold(failed: 0, total: 5))
        #expect(strategy.exceedsThreshold(failed: 1, total: 5))
        strategy.failureThreshold = .percent(20)
        #expect(!strategy.exceedsThreshold(failed: 1, total: 5))
        #expect(strategy.exceedsThreshold(failed: 2, total: 5))
    }
}

@Suite("Progress display")
struct ProgressRendererTests {
    final class Sink: @unchecked Sendable {
        var text = ""
        let lock = NSLock()
        func write(_ s: String) { lock.lock(); text += s; lock.unlock() }
    }

    func event(_ type: RolloutEvent.Kind, host: String? = nil, phase: HostPhase? = nil, _ message: String) -> RolloutEvent {
        RolloutEvent(type: type, time: Date(timeIntervalSince1970: 1_800_000_000), rolloutID: "r1", host: host, phase: phase,
                     wave: host == nil ? nil : "canary", message: message)
    }

    @Test("the table redraws in place: cursor up over the last drawing, one row per host, an overall line")
    func table() {
        let sink = Sink()
        let table = TableRenderer(hosts: ["web-1", "web-2"], palette: Palette(enabled: false), width: 80) { sink.write($0) }
        table.handle(event(.started, "rollout r1"))
        table.handle(event(.host, host: "web-1", phase: .checking, "health check 1 passed"))
        table.handle(event(.host, host: "web-1", phase: .succeeded, "live"))
        // Header + 2 hosts + overall = 4 lines, cleared before each redraw.
        #expect(sink.text.contains("\u{1B}[4F\u{1B}[J"))
        let last = sink.text.components(separatedBy: "\u{1B}[J").last!
        #expect(last.contains("web-1  succeeded"))
        #expect(last.contains("web-2  pending"))
        #expect(last.contains("1/2 done: 1 succeeded"))
        #expect(!last.contains("\u{1B}[3"), "no colour when the palette is off")
    }

    @Test("colour only on a terminal without NO_COLOR")
    func palette() {
        #expect(Palette.forTerminal(isTTY: true, environment: [:]).enabled)
        #expect(!Palette.forTerminal(isTTY: true, environment: ["NO_COLOR": "1"]).enabled)
        #expect(!Palette.forTerminal(isTTY: false, environment: [:]).enabled)
        #expect(!Palette.forTerminal(isTTY: true, environment: ["TERM": "dumb"]).enabled)
    }

    @Test("JSON: one object per event, then the summary with its host lists")
    func json() throws {
        let sink = Sink()
        let renderer = JSONRenderer { sink.write($0) }
        renderer.handle(event(.host, host: "web-1", phase: .succeeded, "live"))
        var failed = HostResult(host: "web-2", phase: .rolledBack)
        failed.error = ErrorInfo(code: "health_check_failed", message: "no passing attempt")
        renderer.finish(RolloutSummary(
            rolloutID: "r1", app: "web", release: "v2", serial: 2, environment: "staging", strategy: "batch all",
            outcome: .failed, halted: true, haltReason: "the canary failed", startedAt: Date(), finishedAt: Date(),
            hosts: [HostResult(host: "web-1", phase: .succeeded), failed]))
        let lines = sink.text.split(separator: "\n")
        #expect(lines.count == 2)
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(lines[1].utf8)) as? [String: Any])
        #expect(summary["succeeded"] as? [String] == ["web-1"])
        #expect(summary["exitStatus"] as? Int == 1)
        let failedList = try #require(summary["failed"] as? [[String: Any]])
        #expect((failedList[0]["error"] as? [String: Any])?["code"] as? String == "health_check_failed")
        let decoded = try BatonJSON.decode(RolloutSummary.self, from: Data(lines[1].utf8))
        #expect(decoded.hosts.count == 2)
    }
}

@Suite("Upload slots")
struct UploadSlotsTests {
    /// Records how many holders overlap; yields instead of sleeping so that waiting
    /// tasks get every chance to run.
    actor Gauge {
        var now = 0, most = 0, done = 0
        func enter() { now += 1; most = max(most, now) }
        func leave() { now -= 1; done += 1 }
    }

    @Test("never more holders than slots, and every waiter gets one in the end")
    func bounded() async {
        let slots = UploadSlots(3)
        let gauge = Gauge()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<20 {
                group.addTask {
                    await slots.acquire()
                    await gauge.enter()
                    // Hold the slot until the others could have joined (bounded: never hangs).
                    for _ in 0..<1000 where await gauge.now < 3 { await Task.yield() }
                    await gauge.leave()
                    await slots.release()
                }
            }
        }
        #expect(await gauge.most == 3)
        #expect(await gauge.done == 20)
        #expect(await slots.tryAcquire())  // all three are free again
        #expect(await slots.tryAcquire())
        #expect(await slots.tryAcquire())
        #expect(await !slots.tryAcquire())
    }

    @Test("a bound below one still lets uploads through, one at a time")
    func atLeastOne() async {
        let slots = UploadSlots(0)
        #expect(slots.count == 1)
        #expect(await slots.tryAcquire())
        #expect(await !slots.tryAcquire())
    }
}
