@testable import BatonController
import NIOCore
import Testing

/// How the hosts are spread over HTTPS clients: all hosts at distinct IP-literal addresses
/// share one client, and inside a client a connection's address names exactly one host.
@Suite struct AgentConnectionGroupsTests {
    static func host(_ id: String, _ address: String) -> Fleet.Host {
        Fleet.Host(id: id, address: address, environment: "staging")
    }

    @Test("two hundred hosts at distinct addresses share one client")
    func distinctAddressesShareOneClient() throws {
        let hosts = (1...200).map { Self.host("host-\($0)", "127.0.0.1:\(20_000 + $0)") }
        let groups = AgentConnectionGroups(hosts).groups
        #expect(groups.count == 1)
        #expect(groups[0].hosts.map(\.id) == hosts.map(\.id))
        let peer = try SocketAddress(ipAddress: "127.0.0.1", port: 20_007)
        #expect(groups[0].host(connectedTo: peer)?.id == "host-7")
        // An address no host of the group has names no host: such a connection is refused.
        #expect(groups[0].host(connectedTo: try SocketAddress(ipAddress: "127.0.0.2", port: 20_007)) == nil)
        #expect(groups[0].host(connectedTo: nil) == nil)
    }

    @Test("hosts sharing an address go to different clients, so each connection names one host")
    func sharedAddressesSplit() throws {
        let hosts = [
            Self.host("a", "10.0.0.1:7443"), Self.host("b", "10.0.0.1:7443"), Self.host("c", "10.0.0.2:7443"),
            Self.host("d", "10.0.0.1:7443"), Self.host("e", "10.0.0.1:7444"),
        ]
        let groups = AgentConnectionGroups(hosts).groups
        #expect(groups.map { $0.hosts.map(\.id) } == [["a", "c", "e"], ["b"], ["d"]])
        let shared = try SocketAddress(ipAddress: "10.0.0.1", port: 7443)
        #expect(groups.map { $0.host(connectedTo: shared)?.id } == ["a", "b", "d"])
    }

    @Test("IPv6 addresses compare in canonical form; a DNS name gets a client of its own")
    func ipv6AndNames() throws {
        let hosts = [
            Self.host("v6", "[fd00:0:0::1]:7443"), Self.host("v6-again", "[fd00::1]:7443"),
            Self.host("named", "agent-1.example.net:7443"), Self.host("named-too", "agent-2.example.net:7443"),
        ]
        let groups = AgentConnectionGroups(hosts).groups
        #expect(groups.map { $0.hosts.map(\.id) } == [["v6"], ["v6-again"], ["named"], ["named-too"]])
        // A lone host is expected on every connection of its client, whatever address it reached.
        #expect(groups[2].host(connectedTo: try SocketAddress(ipAddress: "192.0.2.9", port: 7443))?.id == "named")
        #expect(groups[0].host(connectedTo: try SocketAddress(ipAddress: "fd00::1", port: 7443))?.id == "v6")
    }
}
