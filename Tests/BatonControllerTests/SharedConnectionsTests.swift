@testable import BatonController
import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

/// A view from `sharingConnections(for:retry:)` talks over its owner's connections: one
/// command asking the same agent twice (`baton deploy`: the serials, then the rollout)
/// makes one TLS connection, and the view's shutdown leaves it to the owner.
@Suite(.serialized) struct SharedConnectionsTests {
    /// Established TCP connections to `port` on loopback made by this process (both ends
    /// are on this machine, so each connection is one line whose remote end is the agent;
    /// the socket's inode says whose it is). Another process that happens to connect to a
    /// port a stopped agent of an earlier test had is not counted.
    static func connections(to port: Int) throws -> Int {
        // Read to the end: a proc file's size is 0, and one read returns one page.
        let file = try #require(FileHandle(forReadingAtPath: "/proc/net/tcp"))
        defer { try? file.close() }
        let table = String(decoding: try file.readToEnd() ?? Data(), as: UTF8.self)
        let remote = String(format: "0100007F:%04X", port)
        let ours = Set(
            ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []).compactMap {
                try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\($0)")
            }.filter { $0.hasPrefix("socket:[") }.map { String($0.dropFirst(8).dropLast()) })
        return table.split(separator: "\n").dropFirst().filter { line in
            let fields = line.split(separator: " ")
            return fields.count > 9 && fields[2] == remote && fields[3] == "01" && ours.contains(String(fields[9]))
        }.count
    }

    /// The pools a client sends through, by identity.
    static func pools(_ client: HTTPAgentClient) -> [ObjectIdentifier] {
        client.distinctClients.map { ObjectIdentifier($0) }
    }

    @Test("views share the owner's connection; their shutdown keeps it; hosts the owner lacks get no view")
    func viewsShareTheConnection() async throws {
        let fleet = try await LocalFleet.start(hosts: 1)
        defer { fleet.shutdown() }
        let port = try #require(fleet.daemons["host-1"]?.apiPort)
        let host = Fleet.Host(id: "host-1", address: "127.0.0.1:\(port)", environment: "staging")
        let owner = try HTTPAgentClient(credentials: AgentTransportErrorTests.credentials(fleet), hosts: [host])
        _ = try await owner.health(host)
        let first = try Self.connections(to: port)
        #expect(first == 1, "after the owner's call: \(first)")

        let quick = try #require(owner.sharingConnections(for: [host], retry: .quick))
        // The very same pools: whatever connection the owner has, a view's request can use,
        // and no view makes a TLS context or a pool of its own.
        #expect(Self.pools(quick) == Self.pools(owner))
        _ = try await quick.appStatus(host, app: "web")
        await quick.shutdown()
        let patient = try #require(owner.sharingConnections(for: [host], retry: RetryPolicy()))
        #expect(Self.pools(patient) == Self.pools(owner))
        _ = try await patient.health(host)
        // The first view's shutdown left the owner's connection open.
        let shared = try Self.connections(to: port)
        #expect(shared >= 1, "after the views' calls: \(shared)")
        _ = try await owner.health(host)

        // Another host, or the same id at another address, is not the owner's to serve.
        #expect(owner.sharingConnections(for: [Fleet.Host(id: "host-2", address: "127.0.0.1:\(port)", environment: "staging")], retry: .quick) == nil)
        #expect(owner.sharingConnections(for: [Fleet.Host(id: "host-1", address: "127.0.0.1:1", environment: "staging")], retry: .quick) == nil)

        // A client of its own makes a connection of its own.
        let separate = try HTTPAgentClient(credentials: AgentTransportErrorTests.credentials(fleet), hosts: [host])
        #expect(Set(Self.pools(separate)).isDisjoint(with: Self.pools(owner)))
        let before = try Self.connections(to: port)
        _ = try await separate.health(host)
        let both = try Self.connections(to: port)
        #expect(both == before + 1, "with a client of its own: \(both), before it \(before)")
        await separate.shutdown()
        await owner.shutdown()
    }
}
