import BatonController
import BatonProtocol
import BatonTestSupport
import Foundation
import Synchronization
import Testing

/// A busy agent is not a lost one: an agent that stops answering for a while (here
/// SIGSTOPped for a few seconds, as one starved of CPU while many unpack at once) is
/// waited for within the retry policy's patience, and a deployment's event stream that
/// goes quiet or breaks meanwhile is resumed, not reported as an unreachable host.
@Suite(.serialized) struct AgentPatienceTests {
    static func client(_ fleet: LocalFleet, _ host: Fleet.Host, patience: Duration) throws -> HTTPAgentClient {
        try HTTPAgentClient(
            credentials: AgentTransportErrorTests.credentials(fleet), hosts: [host],
            retry: RetryPolicy(attempts: 1, connectTimeout: .seconds(1), patience: patience), readTimeout: .seconds(1))
    }

    static func host(_ fleet: LocalFleet) throws -> Fleet.Host {
        let port = try #require(fleet.daemons["host-1"]?.apiPort)
        return Fleet.Host(id: "host-1", address: "127.0.0.1:\(port)", environment: "staging")
    }

    @Test("a stopped agent: unreachable without patience, answered once it resumes with patience")
    func stoppedAgentIsWaitedFor() async throws {
        let fleet = try await LocalFleet.start(hosts: 1)
        defer { fleet.shutdown() }
        let daemon = try #require(fleet.daemons["host-1"])
        let host = try Self.host(fleet)
        daemon.signal(SIGSTOP)
        defer { daemon.signal(SIGCONT) }

        try await withAgentClient(try Self.client(fleet, host, patience: .zero)) { client in
            let error = await AgentTransportErrorTests.call(client, host)
            #expect(error?.kind == .unreachable, "\(String(describing: error))")
            #expect(error?.info.code == "agent_unreachable")
        }
        try await withAgentClient(try Self.client(fleet, host, patience: .seconds(8))) { client in
            async let answer = AgentTransportErrorTests.call(client, host)
            try await Task.sleep(for: .milliseconds(2_500))
            daemon.signal(SIGCONT)
            let error = await answer
            #expect(error == nil, "\(String(describing: error))")
        }
    }

    @Test("following a deployment through quiet stretches and a stopped agent: every event once, in order, to the end")
    func followResumesAcrossAStall() async throws {
        let fleet = try await LocalFleet.start(hosts: 1)
        defer { fleet.release(); fleet.shutdown() }
        let daemon = try #require(fleet.daemons["host-1"])
        let host = try Self.host(fleet)
        let v1 = try fleet.artifact("v1")
        try fleet.hold()
        let deploy = try fleet.start(
            ["deploy", "web", "--artifact", v1, "--release", "v1", "--environment", "staging", "--key", "keys/ci.key", "--json"])
        defer { if deploy.process.isRunning { kill(deploy.process.processIdentifier, SIGKILL) } }
        _ = try await deploy.waitForLine(containing: "\"phase\":\"activating\"")

        try await withAgentClient(try Self.client(fleet, host, patience: .seconds(8))) { client in
            let status = try #require(try await client.appStatus(host, app: "web"))
            let deploymentID = try #require(status.activeDeploymentID)
            let delivered = Mutex<[Int]>([])
            async let followed = client.follow(host, deploymentID: deploymentID) { event in
                delivered.withLock { $0.append(event.sequence) }
            }
            // Held in its activate hook: the stream is quiet past the 1 s read timeout.
            try await Task.sleep(for: .milliseconds(1_500))
            daemon.signal(SIGSTOP)
            try await Task.sleep(for: .milliseconds(2_500))
            daemon.signal(SIGCONT)
            fleet.release()
            let record = try await followed
            #expect(record.phase == .succeeded)
            #expect(delivered.withLock { $0 } == record.events.map(\.sequence))
        }
        #expect(await deploy.waitForExit() == 0)
    }
}
