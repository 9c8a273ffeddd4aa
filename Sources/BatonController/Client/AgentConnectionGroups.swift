import NIOCore

/// How the controller's hosts are spread over HTTPS clients so that hundreds of hosts
/// share one client (one TLS context, one connection pool manager, the shared event
/// loops) while every new connection can still be checked for the identity of the host
/// it was made for.
///
/// The HTTP client tells its per-connection check nothing but the connected channel. A
/// channel's peer address is the address the connection was made to (the fleet file's
/// address, with no name resolution in between when that address is an IP literal). So
/// inside one client, hosts at IP-literal addresses are told apart by that address as long
/// as no two of them share it. Hosts that do share an address (a fleet file mistake, or a
/// test's impostor) go to further clients, one each per shared address; a host named by a
/// DNS name gets a client of its own, since the address its connections reach is only
/// known after resolution. Every host is therefore checked against exactly one expected
/// identity, as strictly as with one client per host.
struct AgentConnectionGroups {
    /// One HTTPS client's hosts, and which of them a connection to an address is for.
    struct Group {
        var hosts: [Fleet.Host]
        /// IP-literal endpoint (``endpoint(ip:port:)``) to host; empty for a lone host.
        var byEndpoint: [String: Fleet.Host]

        /// The host a connection to `peer` was made for: the lone host of its group,
        /// or the host at that address. Nil for an address no host of the group has.
        func host(connectedTo peer: SocketAddress?) -> Fleet.Host? {
            if hosts.count == 1 { return hosts[0] }
            guard let peer, let ip = peer.ipAddress, let port = peer.port else { return nil }
            return byEndpoint[AgentConnectionGroups.endpoint(ip: ip, port: port)]
        }
    }

    let groups: [Group]

    init(_ hosts: [Fleet.Host]) {
        var shared: [Group] = []
        var alone: [Group] = []
        for host in hosts {
            guard let key = Self.endpoint(of: host) else {
                alone.append(Group(hosts: [host], byEndpoint: [:]))
                continue
            }
            // The first group that has no host at this address yet.
            if let index = shared.firstIndex(where: { $0.byEndpoint[key] == nil }) {
                shared[index].hosts.append(host)
                shared[index].byEndpoint[key] = host
            } else {
                shared.append(Group(hosts: [host], byEndpoint: [key: host]))
            }
        }
        groups = shared + alone
    }

    /// The canonical address and port of a host reached at an IP literal; nil for a DNS name.
    static func endpoint(of host: Fleet.Host) -> String? {
        guard let address = try? SocketAddress(ipAddress: host.hostname, port: host.port), let ip = address.ipAddress else {
            return nil
        }
        return endpoint(ip: ip, port: host.port)
    }

    /// `ip` as the socket layer prints it (so `::1` and `0:0::1` are one address), and the port.
    static func endpoint(ip: String, port: Int) -> String {
        let canonical = (try? SocketAddress(ipAddress: ip, port: port))?.ipAddress ?? ip
        return "\(canonical) \(port)"
    }
}
