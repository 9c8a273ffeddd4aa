import BatonController
import BatonProtocol
import Foundation
import Testing

/// The one way the controller asks many hosts: answers in host order, a bound on calls in
/// flight, a deadline per host that cancels the call, errors kept as the client typed them.
@Suite struct FanOutTests {
    static let hosts = (1...10).map { Fleet.Host(id: "host-\($0)", address: "127.0.0.1:\(9000 + $0)", environment: "staging") }

    /// Counts calls in flight and remembers the most seen at once.
    actor InFlight {
        var now = 0
        var most = 0
        var cancelled: [String] = []
        func enter() { now += 1; most = max(most, now) }
        func leave() { now -= 1 }
        func cancelled(_ host: String) { cancelled.append(host) }
    }

    @Test func answersComeBackInHostOrderWhateverOrderTheyArrive() async {
        // The first host answers last.
        let answers = await FanOut(width: 10).ask(Self.hosts) { host throws(AgentCallError) in
            let index = Int(host.id.dropFirst(5))!
            try? await Task.sleep(for: .milliseconds(10 * (11 - index)))
            return host.id
        }
        #expect(answers.map(\.host.id) == Self.hosts.map(\.id))
        #expect(answers.map(\.value) == Self.hosts.map(\.id))
    }

    @Test func noMoreThanWidthCallsAreInFlight() async {
        let inFlight = InFlight()
        let answers = await FanOut(width: 3).ask(Self.hosts) { host throws(AgentCallError) in
            await inFlight.enter()
            try? await Task.sleep(for: .milliseconds(20))
            await inFlight.leave()
            return 1
        }
        #expect(answers.count == 10)
        #expect(answers.allSatisfy { $0.value == 1 })
        #expect(await inFlight.most == 3)
    }

    @Test func aHostThatHangsIsUnreachableAfterTheDeadlineAndItsCallIsCancelled() async {
        let inFlight = InFlight()
        let started = ContinuousClock.now
        let answers = await FanOut(width: 10, timeout: .milliseconds(300)).ask(Self.hosts) { host throws(AgentCallError) in
            guard host.id == "host-4" else { return host.id }
            // A host that accepted the connection and never answers.
            do { try await Task.sleep(for: .seconds(3600)) } catch { await inFlight.cancelled(host.id) }
            return "late"
        }
        // A correctness bound, not a timing: an hour-long hang must not hold the command.
        #expect(ContinuousClock.now - started < .seconds(30))
        let hung = answers[3]
        #expect(hung.host.id == "host-4")
        #expect(hung.error?.kind == .unreachable)
        #expect(hung.error?.info.code == "agent_unreachable")
        #expect(hung.error?.info.message.contains("did not answer within") == true, "\(String(describing: hung.error))")
        #expect(answers.filter { $0.value != nil }.count == 9)
        #expect(await inFlight.cancelled == ["host-4"])
    }

    @Test func errorsKeepTheKindAndCodeTheClientGaveThem() async {
        let answers = await FanOut().ask(Array(Self.hosts.prefix(3))) { host throws(AgentCallError) -> String in
            switch host.id {
            case "host-1": throw AgentCallError(.tls, code: "agent_tls_failed", message: "handshake")
            case "host-2": throw AgentCallError(.refused, status: 409, code: "busy", message: "a deployment runs")
            default: return "ok"
            }
        }
        #expect(answers[0].error == AgentCallError(.tls, code: "agent_tls_failed", message: "handshake"))
        #expect(answers[1].error?.status == 409)
        #expect(answers[1].error?.kind == .refused)
        #expect(answers[2].value == "ok")
    }

    @Test func noHostsAskNothing() async {
        let answers = await FanOut().ask([]) { _ throws(AgentCallError) in 1 }
        #expect(answers.isEmpty)
    }
}
