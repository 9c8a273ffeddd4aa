@testable import BatonController
import BatonProtocol
import Foundation
import BatonTestSupport
import Testing

/// The state machine's side of canary analysis: after a healthy canary it asks for an
/// analysis, and the verdict continues, halts and reverts, or pauses the rollout.
@Suite("Canary analysis in the rollout state machine")
struct CanaryAnalysisMachineTests {
    typealias Fixture = RolloutFixture

    static let analysis = CanaryAnalysis(server: "http://127.0.0.1:9", query: "q{host=\"{{host}}\"}", maxDifference: 0.01)

    func report(_ verdict: CanaryAnalysisReport.Verdict, reason: String) -> CanaryAnalysisReport {
        CanaryAnalysisReport(
            verdict: verdict, canary: 0.5, baseline: 0, ratio: nil, difference: 0.5, mannWhitneyP: nil,
            canaryHosts: ["host-1"], baselineHosts: ["host-2", "host-3"], reasons: [reason])
    }

    /// A healthy canary of one host among three, with the analysis asked for.
    func canaryAnalysed(pauseAfterCanary: Bool = false) -> RolloutMachineDriver {
        var drive = RolloutMachineDriver(Fixture.request(hosts: 3) {
            $0.canary = 1
            $0.pauseAfterCanary = pauseAfterCanary
            $0.analysis = Self.analysis
        })
        drive.start(Fixture.hostIDs(3))
        drive.finish("host-1")
        return drive
    }

    @Test("a healthy canary is analysed against the hosts still on the old release before anything else is deployed")
    func analysisIsAsked() {
        let drive = canaryAnalysed()
        #expect(drive.last.contains(.analyse(.init(canary: ["host-1": "v2"], baseline: ["host-2": "v1", "host-3": "v1"]))))
        #expect(drive.deployed == ["host-1"])
        #expect(drive.messages.contains("canary analysis: comparing 1 canary host(s) with 2 on the old release"))
    }

    @Test("passed: the rollout goes on to the batches, and the numbers are in the events")
    func passed() throws {
        var drive = canaryAnalysed()
        drive.send { .analysisPassed(report(.pass, reason: "difference 0 within maxDifference 0.01"), now: $0) }
        if drive.last.contains(.checkLock) { drive.send { .lockChecked(holds: true, now: $0) } }
        #expect(drive.deployed == ["host-1", "host-2", "host-3"])
        let event = try #require(drive.events.last { $0.type == .analysis })
        #expect(event.message == "canary analysis pass: canary 0.5 vs baseline 0 (1 canary, 2 baseline host(s)); difference 0 within maxDifference 0.01")
        drive.finish("host-2")
        drive.finish("host-3")
        #expect(drive.summary?.outcome == .succeeded)
    }

    @Test("passed with --pause-after-canary: the pause comes after the analysis")
    func passedThenPaused() {
        var drive = canaryAnalysed(pauseAfterCanary: true)
        #expect(drive.summary == nil)
        drive.send { .analysisPassed(report(.pass, reason: "ok"), now: $0) }
        #expect(drive.summary?.outcome == .paused)
        #expect(drive.deployed == ["host-1"])
    }

    @Test("failed: the rollout halts with the analysis's reason and reverts the canary")
    func failed() throws {
        var drive = canaryAnalysed()
        drive.send { .analysisFailed(report(.fail, reason: "difference 0.5 over maxDifference 0.01"), now: $0) }
        #expect(drive.messages.contains("halted: the canary analysis failed: difference 0.5 over maxDifference 0.01"))
        drive.send { .lockChecked(holds: true, now: $0) }
        #expect(drive.revertPlan?.hosts == ["host-1"])
        drive.reverted("host-1")
        let summary = try #require(drive.summary)
        #expect(summary.outcome == .failed)
        #expect(summary.reverted == ["host-1"])
        #expect(summary.skipped == ["host-2", "host-3"])
        #expect(drive.deployed == ["host-1"])
    }

    @Test("inconclusive: the rollout pauses for a person, nothing reverted, nothing more deployed")
    func inconclusive() throws {
        var drive = canaryAnalysed()
        drive.send { .analysisInconclusive(report(.inconclusive, reason: "no data from the baseline"), now: $0) }
        let summary = try #require(drive.summary)
        #expect(summary.outcome == .paused)
        #expect(!summary.halted)
        #expect(drive.revertPlan == nil)
        #expect(drive.deployed == ["host-1"])
        #expect(drive.messages.contains { $0.hasPrefix("paused: the canary analysis was inconclusive (no data from the baseline): `baton rollout resume") })
    }

    @Test("an interrupt during the analysis halts once the verdict is in, even a passing one")
    func interruptedWhileAnalysing() {
        var drive = canaryAnalysed()
        drive.send { .interrupt(reason: "interrupted", now: $0) }
        #expect(drive.summary == nil)
        drive.send { .analysisPassed(report(.pass, reason: "ok"), now: $0) }
        drive.send { .lockChecked(holds: true, now: $0) }
        #expect(drive.revertPlan?.hosts == ["host-1"])
        #expect(drive.deployed == ["host-1"])
    }

    @Test("no analysis without later hosts to compare with, or without a canary")
    func notAsked() {
        var drive = RolloutMachineDriver(Fixture.request(hosts: 2) { $0.analysis = Self.analysis })
        drive.start(Fixture.hostIDs(2))
        #expect(!drive.actions.contains { if case .analyse = $0 { true } else { false } })
        var all = RolloutMachineDriver(Fixture.request(hosts: 1) {
            $0.canary = 1
            $0.analysis = Self.analysis
        })
        all.start(Fixture.hostIDs(1))
        all.finish("host-1")
        #expect(!all.actions.contains { if case .analyse = $0 { true } else { false } })
        #expect(all.summary?.outcome == .succeeded)
    }
}

/// The judge alone: the numbers in, the verdict and its reasons out.
@Suite("Canary judge")
struct CanaryJudgeTests {
    @Test("difference and ratio bounds: pass within, fail beyond the failure limit, inconclusive between")
    func bounds() {
        let analysis = CanaryAnalysis(
            server: "http://p:9090", query: "q", maxRatio: 2, failRatio: 4, maxDifference: 0.01, failDifference: 0.05)
        let pass = CanaryJudge.judge(analysis, .init(canary: ["c": 0.011], baseline: ["b1": 0.01, "b2": 0.01]))
        #expect(pass.verdict == .pass)
        #expect(abs((pass.ratio ?? 0) - 1.1) < 1e-9)
        let between = CanaryJudge.judge(analysis, .init(canary: ["c": 0.03], baseline: ["b": 0.01]))
        #expect(between.verdict == .inconclusive)
        #expect(between.reasons.first == "difference 0.02 over maxDifference 0.01 but within failDifference 0.05")
        let fail = CanaryJudge.judge(analysis, .init(canary: ["c": 0.5], baseline: ["b": 0.01]))
        #expect(fail.verdict == .fail)
        #expect(fail.reasons == ["difference 0.49 over failDifference 0.05", "ratio 50 over failRatio 4"])
        #expect(fail.summary == "fail: canary 0.5 vs baseline 0.01 (1 canary, 1 baseline host(s)); difference 0.49 over failDifference 0.05; ratio 50 over failRatio 4")
    }

    @Test("no data from a canary fails; no baseline, or an unanswered query, is inconclusive")
    func missingData() {
        let analysis = CanaryAnalysis(server: "http://p:9090", query: "q", maxDifference: 0.01)
        #expect(CanaryJudge.judge(analysis, .init(canary: ["c": nil], baseline: ["b": 0])).verdict == .fail)
        #expect(CanaryJudge.judge(analysis, .init(canary: ["c": 0], baseline: ["b": nil])).verdict == .inconclusive)
        #expect(CanaryJudge.judge(analysis, .init(canary: ["c": 0], baseline: [:])).verdict == .inconclusive)
        let error = CanaryJudge.judge(analysis, .init(canary: [:], baseline: ["b": 0], errors: ["Prometheus at x: connection refused"]))
        #expect(error.verdict == .inconclusive)
        #expect(error.reasons.first == "Prometheus at x: connection refused")
    }

    @Test("Mann-Whitney: a shifted canary is significantly higher; the same distribution is not")
    func mannWhitney() throws {
        let baseline = (0..<20).map { 0.01 + Double($0 % 5) * 0.001 }
        let shifted = try #require(MannWhitney.greater(baseline.map { $0 + 0.01 }, than: baseline))
        #expect(shifted.p < 0.001)
        let same = try #require(MannWhitney.greater(baseline, than: baseline))
        #expect(same.p > 0.4)
        // Textbook: canary 4,5,6 vs baseline 1,2,3: U = 9, the largest possible.
        #expect(MannWhitney.greater([4, 5, 6], than: [1, 2, 3])?.u == 9)
        let analysis = CanaryAnalysis(server: "http://p:9090", query: "q", mannWhitney: .init(alpha: 0.05))
        let judged = CanaryJudge.judge(
            analysis, .init(canary: ["c": 0.02], baseline: ["b": 0.01], canarySamples: baseline.map { $0 + 0.01 }, baselineSamples: baseline))
        #expect(judged.verdict == .fail)
        #expect(judged.mannWhitneyP.map { $0 < 0.001 } == true)
        let few = CanaryJudge.judge(analysis, .init(canary: ["c": 0.02], baseline: ["b": 0.01], canarySamples: [1], baselineSamples: [1, 2, 3]))
        #expect(few.verdict == .inconclusive)
    }

    @Test("the app file carries metric gates (into the manifest) and the canary analysis (for the controller)")
    func appFile() throws {
        let yaml = """
            app: web
            environments: [staging]
            health:
              checks:
                - type: prometheus
                  server: http://127.0.0.1:9090
                  query: 'sum(rate(errors{host="{{host}}"}[1m]))'
                  max: 0.01
                  failureLimit: 1
            analysis:
              server: http://127.0.0.1:9090
              query: 'sum(rate(errors{host="{{host}}"}[1m]))'
              maxDifference: 0.005
              failDifference: 0.02
              mannWhitney: {window: 10m, step: 15s, alpha: 0.01}
            """
        let definition = try AppDefinition.parse(yaml: yaml, file: "web.yaml")
        #expect(definition.health?.checks == [.prometheus(MetricCheck(
            server: "http://127.0.0.1:9090", query: "sum(rate(errors{host=\"{{host}}\"}[1m]))", max: 0.01, failureLimit: 1))])
        #expect(definition.analysis?.failDifference == 0.02)
        #expect(definition.analysis?.mannWhitney?.effectiveWindow == .minutes(10))
        do {
            _ = try AppDefinition.parse(yaml: yaml.replacingOccurrences(of: "failDifference: 0.02", with: "failDifference: 0.001"), file: "web.yaml")
            Issue.record("accepted")
        } catch {
            #expect(error.message.contains("analysis.failDifference needs maxDifference and must be at least it"), "\(error)")
            #expect((10...11).contains(error.line ?? 0), "\(error)")
        }
    }

    @Test("an app file's analysis is checked with its mistakes named")
    func validation() {
        #expect(CanaryAnalysis(server: "ftp://x", query: " ").problems().count == 3)
        #expect(CanaryAnalysis(server: "http://p:9090", query: "q", maxRatio: 2, failRatio: 1).problems()
            == ["analysis.failRatio needs maxRatio and must be at least it"])
        // `{{window}}` as in a manifest's metric gate: given together or not at all.
        let windowed = "rate(errors_total{host=\"{{host}}\"}[{{window}}])"
        #expect(CanaryAnalysis(server: "http://p:9090", query: windowed, maxDifference: 0.01).problems()
            == ["analysis.query uses {{window}} but the analysis gives no window (e.g. window: 1m)"])
        #expect(CanaryAnalysis(server: "http://p:9090", query: "q", maxDifference: 0.01, window: .minutes(1)).problems()
            == ["analysis.window is given but the query does not use {{window}}"])
        let analysis = CanaryAnalysis(server: "http://p:9090", query: windowed, maxDifference: 0.01, window: .seconds(90))
        #expect(analysis.problems().isEmpty)
        #expect(analysis.expandedQuery(host: "web-1", release: "v2") == "rate(errors_total{host=\"web-1\"}[1m30s])")
    }
}

/// The analyzer's queries against a real Prometheus (Debian's, started by the tests), and
/// against none.
@Suite("Canary analyzer")
struct CanaryAnalyzerTests {
    @Test("an unreachable Prometheus makes the analysis inconclusive, never a pass or a failure")
    func unreachable() async throws {
        let port = try await Self.closedPort()
        let analysis = CanaryAnalysis(server: "http://127.0.0.1:\(port)", query: "up{host=\"{{host}}\"}", maxDifference: 0.01)
        let report = await CanaryAnalyzer(analysis: analysis).run(canary: ["host-1": "v2"], baseline: ["host-2": "v1"])
        #expect(report.verdict == .inconclusive)
        #expect(report.reasons.first == "Prometheus at http://127.0.0.1:\(port): connection refused", "\(report.reasons)")
    }

    @Test("a query Prometheus refuses is inconclusive with its words; a canary without data fails")
    func refusedAndEmpty() async throws {
        let prometheus = try PrometheusServer.shared()
        let refused = await CanaryAnalyzer(analysis: CanaryAnalysis(server: prometheus.url, query: "sum(rate(", maxDifference: 0.01))
            .run(canary: ["host-1": "v2"], baseline: ["host-2": "v1"])
        #expect(refused.verdict == .inconclusive)
        #expect(refused.reasons.first?.contains("bad_data") == true, "\(refused.reasons)")
        // `+` in a query reaches Prometheus as `+`, not as a space.
        let empty = await CanaryAnalyzer(analysis: CanaryAnalysis(
            server: prometheus.url, query: "baton_no_such_series{host=\"{{host}}\"} + 1", maxDifference: 0.01))
            .run(canary: ["host-1": "v2"], baseline: ["host-2": "v1"])
        #expect(empty.verdict == .fail)
        #expect(empty.reasons.contains("no data from canary host(s) host-1"), "\(empty.reasons)")
        #expect(empty.reasons.contains("no data from the baseline"), "\(empty.reasons)")
    }

    @Test("{{window}} reaches Prometheus as a PromQL duration: the windowed query is answered and judged")
    func windowedQuery() async throws {
        let prometheus = try PrometheusServer.shared()
        // A subquery over the window: valid PromQL only once `{{window}}` is a duration (left
        // as it is, Prometheus refuses it and the analysis would be inconclusive).
        let analysis = CanaryAnalysis(
            server: prometheus.url, query: "count_over_time(vector(1)[{{window}}:1s]) * 0 + 1", maxDifference: 0.01,
            window: .seconds(30))
        let report = await CanaryAnalyzer(analysis: analysis).run(canary: ["host-1": "v2"], baseline: ["host-2": "v1"])
        #expect(report.verdict == .pass, "\(report.reasons)")
    }

    @Test("a pause for an inconclusive analysis is announced with its reason, not as a healthy canary")
    func inconclusivePauseNotification() {
        var milestones = RolloutMilestones(identity: RolloutIdentity(
            app: "web", release: "v2", serial: 2, environment: "staging", actor: "ci", hosts: 3))
        let message = "paused: the canary analysis was inconclusive (no data from the baseline): `baton rollout resume r-1` continues"
        #expect(milestones.observe(RolloutEvent(type: .paused, rolloutID: "r-1", message: message)) == nil)
        let made = milestones.finish(RolloutSummary(
            rolloutID: "r-1", app: "web", release: "v2", serial: 2, environment: "staging", strategy: "canary 1",
            outcome: .paused, halted: false, haltReason: nil, startedAt: Date(), finishedAt: Date(),
            hosts: [HostResult(host: "host-1", phase: .succeeded)]))
        #expect(made.map(\.message) == [message])
    }

    static func closedPort() async throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
