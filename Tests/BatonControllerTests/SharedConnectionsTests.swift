import BatonController
import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

/// A view from `sharingConnections(for:retry:)` talks over its owner's connections: one
/// command asking the same agent twice (`baton deploy`: the serials, then the rollout)
/// makes one TLS connection, and the view's shutdown leaves it to the owner.
@Suite(.serialized) struct SharedConnectionsTests {
    /// Established TCP connections to `port` on loopback (both ends are on this machine,
    /// so each connection is one line whose remote end is the agent).
    static func connections(to port: Int) throws -> Int {
        // Read to the end: a proc file's size is 0, and one read returns one page.
        let file = try #require(FileHandle(forReadingAtPath: "/proc/net/tcp"))
        defer { try? file.close() }
        let table = String(decoding: try file.readToEnd() ?? Data(), as: UTF8.self)
        let remote = String(format: "0100007F:%04X", port)
        return table.split(separator: "\n").dropFirst().filter { line in
            let fields = line.split(separator: " ")
            return fields.count > 3 && fields[2] == remote && fields[3] == "01"
        }.count
    }

    @Test("views share the owner's connection; their shutdown keeps it; hosts the owner lacks get no view")
    func viewsShareTheConnection() async throws {
        let fleet = try await LocalFleet.start(hosts: 1)
        defer { fleet.shutdown() }
        let port = try #require(fleet.daemons["host-1"]?.apiPort)
        let host = Fleet.Host(id: "host-1", address: "127.0.0.1:\(port)", environment: "staging")
        let owner = try HTTPAgentClient(credentials: AgentTransportErrorTests.credentials(fleet), hosts: [host])
        _ = try await owner.health(host)
        #expect(try Self.connections(to: port) == 1)

        let quick = try #require(owner.sharingConnections(for: [host], retry: .quick))
        _ = try await quick.appStatus(host, app: "web")
        await quick.shutdown()
        let patient = try #require(owner.sharingConnections(for: [host], retry: RetryPolicy()))
        _ = try await patient.health(host)
        #expect(try Self.connections(to: port) == 1)
        _ = try await owner.health(host)

        // Another host, or the same id at another address, is not the owner's to serve.
        #expect(owner.sharingConnections(for: [Fleet.Host(id: "host-2", address: "127.0.0.1:\(port)", environment: "staging")], retry: .quick) == nil)
        #expect(owner.sharingConnections(for: [Fleet.Host(id: "host-1", address: "127.0.0.1:1", environment: "staging")], retry: .quick) == nil)

        // A client of its own makes a connection of its own.
        let separate = try HTTPAgentClient(credentials: AgentTransportErrorTests.credentials(fleet), hosts: [host])
        _ = try await separate.health(host)
        #expect(try Self.connections(to: port) == 2)
        await separate.shutdown()
        await owner.shutdown()
    }
}
