import BatonTestSupport
import Foundation
import Testing

@Suite("baton with broken controller credentials", .serialized)
struct ControllerCredentialsTests {
    /// A listening socket standing in for an agent: it only tells whether anyone connected.
    final class Listener {
        let fd: Int32
        let port: Int

        init() throws {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            self.fd = fd
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
            }
            guard bound == 0, listen(fd, 16) == 0 else {
                close(fd)
                throw TestSupportError("cannot listen on 127.0.0.1")
            }
            _ = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
            }
            port = Int(UInt16(bigEndian: address.sin_port))
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }

        /// True when a connection is waiting to be accepted.
        func wasContacted() -> Bool {
            let client = accept(fd, nil, nil)
            if client >= 0 { close(client) }
            return client >= 0
        }

        deinit { close(fd) }
    }

    @Test("a wrong key, a wrong CA or a missing certificate: exit 2, a code, the file named, and no agent contacted")
    func brokenCredentialsFailBeforeAnyAgentIsContacted() async throws {
        let fleet = try await LocalFleet.start(hosts: 1, down: ["host-1"])
        defer { fleet.shutdown() }
        let agent = try Listener()
        try "hosts:\n  - {id: host-1, address: \"127.0.0.1:\(agent.port)\", environment: staging}\n"
            .write(toFile: fleet.dir.child("fleet.yaml"), atomically: true, encoding: .utf8)
        let otherCA = fleet.dir.child("other-ca")
        let made = try ProcessRunner.run(ProcessRunner.executable("baton"), ["pki", "init", otherCA])
        try #require(made.status == 0, "\(made.stderr)")

        let agentKey = fleet.dir.child("hosts/host-1/tls/host-1.key")
        let ownCertificate = fleet.dir.child("pki/ci.pem"), gone = fleet.dir.child("pki/gone.pem")
        // (flags, code, the start of the message, a part of it further on: the file named)
        let cases: [(flags: [String], code: String, start: String, file: String)] = [
            (["--tls-key", agentKey], "credentials_invalid", "the controller key '", "\(agentKey)' is not the private key of the certificate"),
            (["--ca", "\(otherCA)/ca.pem"], "credentials_invalid", "the controller certificate '", "pki/ci.pem' was not issued by the fleet CA"),
            (["--ca", ownCertificate], "credentials_invalid", "the fleet CA certificate '", "\(ownCertificate)' is not a CA certificate"),
            (["--cert", gone], "credentials_missing", "the controller certificate '", "\(gone)' does not exist"),
        ]
        for (flags, code, start, file) in cases {
            let result = try await fleet.run(["status", "web"] + flags)
            #expect(result.status == 2, "\(flags): exit \(result.status)\n\(result.stdout)\(result.stderr)")
            #expect(result.stderr.hasPrefix("error: \(code): \(start)"), "\(flags): \(result.stderr)")
            #expect(result.stderr.contains(file), "\(flags): \(result.stderr)")
            #expect(!result.stdout.contains("host-1"), "\(flags): \(result.stdout)")
            #expect(!agent.wasContacted(), "\(flags): the agent was contacted")
        }

        // With the files right, the same command does reach the stand-in agent.
        _ = try await fleet.run(["status", "web"])
        #expect(agent.wasContacted())
    }
}
