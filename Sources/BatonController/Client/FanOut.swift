import BatonProtocol

/// One host's answer to a question asked of many.
public struct HostAnswer<Answer: Sendable>: Sendable {
    public var host: Fleet.Host
    public var result: Result<Answer, AgentCallError>

    public init(host: Fleet.Host, result: Result<Answer, AgentCallError>) {
        self.host = host
        self.result = result
    }

    public var value: Answer? { try? result.get() }
    public var error: AgentCallError? {
        if case .failure(let error) = result { return error }
        return nil
    }
}

/// Asks many hosts the same question at once: the one way the controller does it (status,
/// plan, releases, serials, audit heads, reachability, a rollout's first look).
///
/// At most `width` calls are in flight, so a fleet of hundreds neither opens hundreds of
/// connections at once nor waits for them one by one; each host's question is bounded
/// by `timeout` (a host that hangs after connecting answers `agent_unreachable`, it does
/// not hold the command); answers come back in the order of `hosts`, whatever order they
/// arrived in. Failures are classified by the client (`AgentCallError.Kind`), never by
/// reading error text.
public struct FanOut: Sendable {
    public var width: Int
    public var timeout: Duration

    public init(width: Int = 32, timeout: Duration = .seconds(30)) {
        self.width = max(1, width)
        self.timeout = timeout
    }

    /// For quick questions (`baton status`, `plan`, `releases`): a host that does not
    /// answer within 15 s is reported as unreachable.
    public static let quick = FanOut(width: 32, timeout: .seconds(15))

    public func ask<Answer: Sendable>(
        _ hosts: [Fleet.Host], _ question: @escaping @Sendable (Fleet.Host) async throws(AgentCallError) -> Answer
    ) async -> [HostAnswer<Answer>] {
        let timeout = self.timeout
        var answers = [Result<Answer, AgentCallError>?](repeating: nil, count: hosts.count)
        await withTaskGroup(of: (Int, Result<Answer, AgentCallError>).self) { group in
            var next = 0
            func start() {
                let index = next
                let host = hosts[index]
                next += 1
                group.addTask { (index, await Self.answer(host, within: timeout, question)) }
            }
            while next < hosts.count, next < width { start() }
            for await (index, result) in group {
                answers[index] = result
                if next < hosts.count { start() }
            }
        }
        return zip(hosts, answers).map { HostAnswer(host: $0, result: $1!) }
    }

    /// One host's answer, or `agent_unreachable` once `timeout` has passed (the call is
    /// cancelled then). A named function rather than a task-group closure: Swift 6.3.1
    /// miscompiles, at -O, a typed `do/catch` written directly inside an `addTask` closure
    /// that returns a `Result<_, AgentCallError>` (the group reads a corrupt value and the
    /// release build crashes or hangs; debug builds are fine). Keep typed `do/catch` in
    /// named functions like `call` below, never in task-group closures.
    static func answer<Answer: Sendable>(
        _ host: Fleet.Host, within timeout: Duration,
        _ question: @escaping @Sendable (Fleet.Host) async throws(AgentCallError) -> Answer
    ) async -> Result<Answer, AgentCallError> {
        await withTaskGroup(of: Result<Answer, AgentCallError>?.self) { group in
            group.addTask { await call(host, question) }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first ?? .failure(AgentCallError(
                .unreachable, .unreachable,
                message: "\(host.id) at \(host.address) did not answer within \(timeout.components.seconds) s"))
        }
    }

    static func call<Answer: Sendable>(
        _ host: Fleet.Host, _ question: @Sendable (Fleet.Host) async throws(AgentCallError) -> Answer
    ) async -> Result<Answer, AgentCallError> {
        do throws(AgentCallError) { return .success(try await question(host)) } catch { return .failure(error) }
    }
}
