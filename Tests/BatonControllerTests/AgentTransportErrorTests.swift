import BatonController
import BatonPKI
import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

/// How the real client classifies what goes wrong on the way to a real agent: by the
/// error's type (`AgentCallError.Kind`), which every caller (rollout, status, plan)
/// relies on to tell "unreachable" from "refused" from "not our agent".
@Suite(.serialized) struct AgentTransportErrorTests {
    static func credentials(_ fleet: LocalFleet) -> ControllerCredentials {
        ControllerCredentials(
            certificatePath: fleet.dir.child("pki/ci.pem"), keyPath: fleet.dir.child("pki/ci.key"), caPath: fleet.dir.child("pki/ca/ca.pem"))
    }

    static func call(_ client: HTTPAgentClient, _ host: Fleet.Host) async -> AgentCallError? {
        do throws(AgentCallError) {
            _ = try await client.health(host)
            return nil
        } catch {
            return error
        }
    }

    @Test func tlsAndIdentityFailuresAreTLSAndAClosedPortIsUnreachable() async throws {
        let fleet = try await LocalFleet.start(hosts: 2)
        defer { fleet.shutdown() }
        let port1 = try #require(fleet.daemons["host-1"]?.apiPort)
        let right = Fleet.Host(id: "host-1", address: "127.0.0.1:\(port1)", environment: "staging")
        // host-2's name, host-1's address: a valid fleet certificate of another host.
        let impostor = Fleet.Host(id: "host-2", address: "127.0.0.1:\(port1)", environment: "staging")
        let closed = Fleet.Host(id: "host-3", address: "127.0.0.1:1", environment: "staging")
        let quick = RetryPolicy(attempts: 1, connectTimeout: .seconds(2))

        try await withAgentClient(try HTTPAgentClient(credentials: Self.credentials(fleet), hosts: [right, impostor, closed], retry: quick)) { client in
            #expect(await Self.call(client, right) == nil)
            let mismatch = await Self.call(client, impostor)
            #expect(mismatch?.kind == .tls)
            #expect(mismatch?.info.code == "agent_identity_mismatch", "\(String(describing: mismatch))")
            let unreachable = await Self.call(client, closed)
            #expect(unreachable?.kind == .unreachable)
            #expect(unreachable?.info.code == "agent_unreachable", "\(String(describing: unreachable))")
        }

        // A controller of another fleet: its CA does not vouch for the agent's certificate.
        let other = try TemporaryDirectory(prefix: "baton-other-fleet")
        defer { other.remove() }
        let ca = try FleetCA.create(in: other.child("ca"), name: "other")
        let controller = try ca.issueController(name: "ci").write(to: other.path)
        let foreign = ControllerCredentials(certificatePath: controller.certificate, keyPath: controller.key, caPath: ca.certificatePath)
        try await withAgentClient(try HTTPAgentClient(credentials: foreign, hosts: [right], retry: quick)) { client in
            let refused = await Self.call(client, right)
            #expect(refused?.kind == .tls)
            #expect(refused?.info.code == "agent_tls_failed", "\(String(describing: refused))")
        }
    }
}
