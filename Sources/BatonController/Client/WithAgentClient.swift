/// Runs `body` with a client for `hosts` and shuts the client down afterwards, whether
/// `body` returns or throws: no command has to remember the shutdown, and a throw half-way
/// through cannot leak connections (the manner of async-http-client's `withHTTPClient`).
public func withAgentClient<Result>(
    credentials: ControllerCredentials, hosts: [Fleet.Host], retry: RetryPolicy = RetryPolicy(),
    isolation: isolated (any Actor)? = #isolation,
    _ body: (HTTPAgentClient) async throws -> Result
) async throws -> Result {
    let client = try HTTPAgentClient(credentials: credentials, hosts: hosts, retry: retry)
    let result: Result
    do {
        result = try await body(client)
    } catch {
        await client.shutdown()
        throw error
    }
    await client.shutdown()
    return result
}
