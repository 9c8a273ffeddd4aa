/// Makes the agent client for `hosts`. The CLI's makes an ``HTTPAgentClient`` from the
/// controller's credentials; tests hand in an in-memory one.
public typealias AgentClientFactory = @Sendable (_ hosts: [Fleet.Host], _ retry: RetryPolicy) throws(ControllerError) -> any AgentClient

/// Makes a client with `make`, runs `body` with it, and shuts the client down after
/// `body`, whether it returned or threw: no caller can forget the shutdown on an error
/// path (an HTTP client left running holds its connections and event loops). The manner
/// of async-http-client's `withHTTPClient`.
public func withAgentClient<T>(
    for hosts: [Fleet.Host], retry: RetryPolicy = RetryPolicy(), using make: AgentClientFactory,
    _ body: (any AgentClient) async throws(ControllerError) -> T
) async throws(ControllerError) -> T {
    try await withAgentClient(try make(hosts, retry), body)
}

/// Runs `body` with `client` and shuts the client down afterwards, on every path.
public func withAgentClient<Client: AgentClient, T, Failure: Error>(
    _ client: Client, _ body: (Client) async throws(Failure) -> T
) async throws(Failure) -> T {
    let value: T
    do {
        value = try await body(client)
    } catch {
        await client.shutdown()
        throw error
    }
    await client.shutdown()
    return value
}

extension ControllerConfiguration {
    /// The mutual-TLS client for `hosts`, once the controller's own certificate, key and CA
    /// are checked: before any agent is contacted, since those files are its own fault.
    public func agentClient(for hosts: [Fleet.Host], retry: RetryPolicy = RetryPolicy()) throws(ControllerError) -> HTTPAgentClient {
        let credentials = try requireCredentials()
        _ = try credentials.check()
        return try HTTPAgentClient(credentials: credentials, hosts: hosts, retry: retry)
    }
}
