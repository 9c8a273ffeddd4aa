import AsyncHTTPClient
import BatonPKI
import BatonProtocol
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// How often and how patiently the controller tries an agent before calling it unreachable.
///
/// An agent that refuses connections (nothing listening) is tried `attempts` times. One that
/// is slow to answer (connection, handshake or answer timed out) is busy rather than gone,
/// say unpacking a release on a loaded machine: it is tried on, with the same backoff,
/// until `patience` has passed since the first attempt.
public struct RetryPolicy: Sendable {
    /// Attempts per call, the first included.
    public var attempts: Int
    /// The wait before the second attempt; doubled each time, capped at `maximumDelay`.
    public var initialDelay: Duration
    public var maximumDelay: Duration
    public var connectTimeout: Duration
    /// How long a call keeps trying an agent that times out (zero: `attempts` only).
    public var patience: Duration

    public init(attempts: Int = 4, initialDelay: Duration = .milliseconds(200), maximumDelay: Duration = .seconds(2),
                connectTimeout: Duration = .seconds(3), patience: Duration = .seconds(60)) {
        self.attempts = max(1, attempts)
        self.initialDelay = initialDelay
        self.maximumDelay = maximumDelay
        self.connectTimeout = connectTimeout
        self.patience = patience
    }

    /// For questions that should answer fast (`baton status`, `plan`): fewer, shorter tries,
    /// no patience for a slow agent.
    public static let quick = RetryPolicy(attempts: 2, initialDelay: .milliseconds(150), connectTimeout: .seconds(2), patience: .zero)
}

/// The controller's HTTPS client for the agent API (Protocol/PROTOCOL.md §10): one HTTPS client
/// for the fleet (more only when hosts share an address or are named by DNS names), TLS 1.3
/// with the fleet CA only and the controller's certificate.
///
/// Every connection to a host is checked, right after the handshake and before any
/// request, for the certificate identity `baton://agent/<host-id>` of the host we meant:
/// a valid fleet certificate of another host is refused (`agent_identity_mismatch`).
public final class HTTPAgentClient: AgentClient {
    /// Each host's HTTPS client: one shared by most hosts (see AgentConnectionGroups).
    private let clients: [String: HTTPClient]
    /// Every client once, for the shutdown.
    /// Internal, not private: tests check that a view holds the very same pools.
    let distinctClients: [HTTPClient]
    /// The certificate each agent presented, as last seen (for `baton status`).
    private let certificates: CertificateBook

    final class CertificateBook: Sendable {
        private let seen = Mutex<[String: PeerCertificate]>([:])
        func set(_ host: String, _ certificate: PeerCertificate) { seen.withLock { $0[host] = certificate } }
        func get(_ host: String) -> PeerCertificate? { seen.withLock { $0[host] } }
    }
    private let retry: RetryPolicy
    /// Per-request deadline for ordinary calls (uploads get one scaled to their size).
    private let requestTimeout: TimeAmount
    /// The hosts, as the fleet file gave them, that this client was made for.
    private let hosts: [String: Fleet.Host]
    /// False for a view from ``sharingConnections(retry:)``: its shutdown leaves the
    /// connections to the client that made them.
    private let ownsConnections: Bool

    public init(credentials: ControllerCredentials, hosts: [Fleet.Host], retry: RetryPolicy = RetryPolicy(),
                requestTimeout: Duration = .seconds(30), readTimeout: Duration = .seconds(30)) throws(ControllerError) {
        let tls = try credentials.tlsConfiguration()
        for host in hosts where PeerIdentity.agentTLSName(hostID: host.id) == nil {
            throw ControllerError(
                .configurationInvalid,
                "host id '\(host.id)' cannot be an agent's TLS name (use letters, digits, dots and hyphens)")
        }
        // Usually one client for the whole fleet: its one TLS context serves every host, and
        // its pool keeps each host's connections apart (by the host's TLS name).
        var clients: [String: HTTPClient] = [:]
        var all: [HTTPClient] = []
        let book = CertificateBook()
        certificates = book
        for group in AgentConnectionGroups(hosts).groups {
            var configuration = HTTPClient.Configuration(
                tlsConfiguration: tls,
                redirectConfiguration: .disallow,
                timeout: .init(connect: .init(retry.connectTimeout), read: .init(readTimeout), write: .init(readTimeout)),
                ignoreUncleanSSLShutdown: false)
            // Our own bounded backoff decides when a host is unreachable.
            configuration.connectionPool.retryConnectionEstablishment = false
            configuration.decompression = .disabled
            configuration.httpVersion = .http1Only
            for host in group.hosts {
                configuration.dnsOverride[PeerIdentity.agentTLSName(hostID: host.id)!] = host.hostname
            }
            // The TLS library's hostname check also passes on an IP address SAN, which every
            // agent reached at that address may carry; so each new connection is checked
            // for the `baton://agent/<host-id>` of the host it was made for (known from the
            // address it reached, see AgentConnectionGroups) before any request uses it.
            configuration.http1_1ConnectionDebugInitializer = { channel in
                guard let host = group.host(connectedTo: channel.remoteAddress) else {
                    channel.close(promise: nil)
                    return channel.eventLoop.makeFailedFuture(
                        IdentityMismatch(expected: nil, found: "a connection to \(channel.remoteAddress.map { "\($0)" } ?? "an unknown address"), which is no host's address"))
                }
                return Self.verifyIdentity(channel, expected: PeerIdentity.agent(hostID: host.id)) { certificate in
                    book.set(host.id, certificate)
                }
            }
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            all.append(client)
            for host in group.hosts { clients[host.id] = client }
        }
        self.clients = clients
        self.distinctClients = all
        self.retry = retry
        self.requestTimeout = .init(requestTimeout)
        self.hosts = Dictionary(hosts.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        self.ownsConnections = true
    }

    private init(sharing other: HTTPAgentClient, retry: RetryPolicy) {
        clients = other.clients
        distinctClients = other.distinctClients
        certificates = other.certificates
        self.retry = retry
        requestTimeout = other.requestTimeout
        hosts = other.hosts
        ownsConnections = false
    }

    /// The same connections (pools, TLS context, identity checks) with another retry
    /// policy; shutting the view down leaves them open for this client. One command that
    /// talks to the same hosts twice (`baton deploy`: the serials, then the rollout) then
    /// makes each TLS connection once. The connect timeout stays this client's. Nil when
    /// `hosts` are not all among this client's hosts, exactly as the fleet file gave them.
    public func sharingConnections(for hosts: [Fleet.Host], retry: RetryPolicy) -> HTTPAgentClient? {
        guard hosts.allSatisfy({ self.hosts[$0.id] == $0 }) else { return nil }
        return HTTPAgentClient(sharing: self, retry: retry)
    }

    /// Fails (and closes) a connection whose peer is not `expected`.
    static func verifyIdentity(
        _ channel: any Channel, expected: PeerIdentity, seen: @escaping @Sendable (PeerCertificate) -> Void
    ) -> EventLoopFuture<Void> {
        channel.nioSSL_peerCertificate().flatMapThrowing { certificate -> Void in
            guard let certificate else { throw IdentityMismatch(expected: expected, found: "no certificate") }
            let peer: PeerCertificate
            do {
                peer = try PeerCertificate(derBytes: try certificate.toDERBytes())
            } catch {
                throw IdentityMismatch(expected: expected, found: "an unreadable identity (\(error))")
            }
            guard peer.identity == expected else { throw IdentityMismatch(expected: expected, found: peer.identity.uri) }
            seen(peer)
        }.flatMapError { error in
            channel.close(promise: nil)
            return channel.eventLoop.makeFailedFuture(error)
        }
    }

    struct IdentityMismatch: Error, CustomStringConvertible {
        /// Nil when the connection reached an address no host of its client has.
        var expected: PeerIdentity?
        var found: String
        var description: String {
            guard let expected else { return "the client made \(found)" }
            return "the agent presented \(found), not \(expected.uri)"
        }
    }

    public func shutdown() async {
        guard ownsConnections else { return }
        for client in distinctClients { try? await client.shutdown() }
    }

    /// The certificate `host`'s agent presented on the last new connection.
    public func certificate(of host: Fleet.Host) -> PeerCertificate? { certificates.get(host.id) }

    // MARK: The calls

    public func apps(_ host: Fleet.Host) async throws(AgentCallError) -> [AppStatus] {
        let response = try await send(host, .GET, "/v1/apps")
        return try await decode(AppList.self, response, host).apps
    }

    public func health(_ host: Fleet.Host) async throws(AgentCallError) -> AgentHealth {
        let response = try await send(host, .GET, "/v1/health")
        return try await decode(AgentHealth.self, response, host)
    }

    /// The agent's signed audit head; with `line`, also the hash of that line of its chain.
    public func auditHead(_ host: Fleet.Host, line: Int?) async throws(AgentCallError) -> SignedAuditHead {
        let response = try await send(host, .GET, "/v1/audit/head" + (line.map { "?line=\($0)" } ?? ""))
        return try await decode(SignedAuditHead.self, response, host)
    }

    /// The app's state on the host, or nil when the host never saw the app.
    public func appStatus(_ host: Fleet.Host, app: String) async throws(AgentCallError) -> AppStatus? {
        let response = try await send(host, .GET, "/v1/apps/\(app)", accept: [404])
        if response.status == .notFound { return nil }
        return try await decode(AppStatus.self, response, host)
    }

    public func hasArtifact(_ host: Fleet.Host, sha256: String) async throws(AgentCallError) -> Bool {
        let response = try await send(host, .HEAD, "/v1/artifacts/sha256/\(sha256)", accept: [404])
        return response.status == .ok
    }

    /// Streams the file to the agent unless it holds the artifact already (`HEAD` first).
    /// True when bytes were sent.
    @discardableResult
    public func uploadArtifact(_ host: Fleet.Host, file: String, sha256: String, size: UInt64) async throws(AgentCallError) -> Bool {
        if try await hasArtifact(host, sha256: sha256) { return false }
        // A stalled upload is caught by the idle timeouts (nothing written, or no answer, for
        // the read timeout); this deadline only bounds a trickle: at least 1 MB/s, plus a
        // minute. Busy agents on a loaded machine took longer than a 10 MB/s deadline, and
        // each retry sent the whole artifact again.
        let deadline = max(requestTimeout, .seconds(Int64(size / 1_000_000) + 60))
        let response = try await send(
            host, .PUT, "/v1/artifacts/sha256/\(sha256)", timeout: deadline,
            headers: [("Content-Type", "application/octet-stream")],
            body: { .stream(FileChunks(path: file, pacing: HTTPClient.defaultEventLoopGroup), length: .known(Int64(size))) })
        _ = try await decode(ArtifactReceipt.self, response, host)
        return true
    }

    /// Posts an envelope. An identical resend answers with the existing deployment, so
    /// this is safe to retry and to repeat after a controller restart.
    public func submit(_ host: Fleet.Host, envelope: [UInt8]) async throws(AgentCallError) -> DeploymentAccepted {
        let response = try await send(
            host, .POST, "/v1/deployments", headers: [("Content-Type", "application/json")],
            body: { .bytes(ByteBuffer(bytes: envelope)) })
        return try await decode(DeploymentAccepted.self, response, host)
    }

    public func record(_ host: Fleet.Host, deploymentID: String) async throws(AgentCallError) -> DeploymentRecord {
        let response = try await send(host, .GET, "/v1/deployments/\(deploymentID)")
        return try await decode(DeploymentRecord.self, response, host)
    }

    /// Follows a deployment's events to its terminal phase, handing each new one to
    /// `onEvent` once, in order. A dropped or idle stream is resumed from the record (its
    /// events fill the gap), then the stream is opened again. An idle stream (no event
    /// within the read timeout: a long unpack or health check) is no loss; the record is
    /// asked with the retry policy's patience, so an agent too busy to answer for a while
    /// is followed on, not given up.
    public func follow(
        _ host: Fleet.Host, deploymentID: String, onEvent: @Sendable (DeploymentEvent) async -> Void
    ) async throws(AgentCallError) -> DeploymentRecord {
        var seen = 0
        var interruptions = 0
        while true {
            do {
                let response = try await send(host, .GET, "/v1/deployments/\(deploymentID)/events", timeout: .hours(24))
                var pending = ByteBuffer()
                for try await chunk in response.body {
                    var chunk = chunk
                    pending.writeBuffer(&chunk)
                    while let newline = pending.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
                        let length = newline - pending.readerIndex
                        let line = pending.readBytes(length: length) ?? []
                        pending.moveReaderIndex(forwardBy: 1)
                        guard !line.isEmpty else { continue }
                        guard let event = try? BatonJSON.decode(DeploymentEvent.self, from: Data(line)) else {
                            throw AgentCallError(
                                .badResponse, .badResponse,
                                message: "\(host.id) sent an event line that is not a deployment event")
                        }
                        if event.sequence > seen {
                            seen = event.sequence
                            await onEvent(event)
                        }
                    }
                    pending.discardReadBytes()
                }
            } catch let error as AgentCallError where error.kind == .refused || error.kind == .badResponse {
                throw error
            } catch let error as HTTPClientError where error == .readTimeout {
                // Quiet, not lost: the agent sends an event only when something happens.
            } catch {
                interruptions += 1
            }
            // The stream ended (normally at a terminal phase) or broke: the record is the truth.
            let record = try await record(host, deploymentID: deploymentID)
            for event in record.events where event.sequence > seen {
                seen = event.sequence
                await onEvent(event)
            }
            if record.phase.isTerminal { return record }
            if interruptions > 20 {
                throw AgentCallError(
                    .unreachable, .unreachable,
                    message: "lost the event stream of \(deploymentID) on \(host.id) \(interruptions) times")
            }
            try? await Task.sleep(for: .milliseconds(200))
            if Task.isCancelled { throw AgentCallError(.unreachable, .cancelled, message: "cancelled") }
        }
    }

    // MARK: Transport

    private func url(_ host: Fleet.Host, _ path: String) -> String {
        "https://\(PeerIdentity.agentTLSName(hostID: host.id) ?? host.id):\(host.port)\(path)"
    }

    /// Sends one request with bounded retries. Connection failures and 5xx answers are
    /// retried (every call here is idempotent: uploads are content-addressed and a resent
    /// envelope answers with the existing deployment); TLS failures and 4xx never are.
    /// Timeouts are retried on until the policy's patience has passed (``RetryPolicy``).
    private func send(
        _ host: Fleet.Host, _ method: HTTPMethod, _ path: String, accept: Set<Int> = [],
        timeout: TimeAmount? = nil, headers: [(String, String)] = [],
        body: (@Sendable () -> HTTPClientRequest.Body)? = nil
    ) async throws(AgentCallError) -> HTTPClientResponse {
        let clock = ContinuousClock()
        let start = clock.now
        var delay = retry.initialDelay
        var lastError = AgentCallError(.unreachable, .unreachable, message: "\(host.id) was not tried")
        var attempt = 0
        var timedOut = false
        while true {
            attempt += 1
            if attempt > 1 {
                // Out of attempts: go on only for a host that timed out, within the patience.
                if attempt > retry.attempts, !(timedOut && clock.now - start + delay < retry.patience) { break }
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, retry.maximumDelay)
            }
            if Task.isCancelled {
                throw AgentCallError(.unreachable, .cancelled, message: "the call to \(host.id) was cancelled")
            }
            var request = HTTPClientRequest(url: url(host, path))
            request.method = method
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            if let body { request.body = body() }
            do {
                guard let http = clients[host.id] else {
                    throw AgentCallError(.unreachable, .unreachable, message: "\(host.id) is not among the hosts this client was made for")
                }
                let response = try await http.execute(request, timeout: timeout ?? requestTimeout)
                let status = Int(response.status.code)
                if (200..<300).contains(status) || accept.contains(status) { return response }
                let document = try? await response.body.collect(upTo: 64 * 1024)
                let info = document.flatMap { try? BatonJSON.decode(ErrorDocument.self, from: Data($0.readableBytesView)) }?.error
                    ?? ErrorInfo(code: "http_\(status)", message: "\(host.id) answered \(status) without an error document")
                if (400..<500).contains(status) {
                    throw AgentCallError(.refused, status: status, code: info.code, message: info.message)
                }
                timedOut = false
                lastError = AgentCallError(.agentError, status: status, code: info.code, message: info.message)
            } catch let error as AgentCallError {
                throw error
            } catch {
                if let mismatch = error as? IdentityMismatch {
                    throw AgentCallError(
                        .tls, .identityMismatch,
                        message: "refusing \(host.address) for \(host.id): \(mismatch); the fleet file's address for \(host.id) reaches another host")
                }
                if Self.isTLSFailure(error) {
                    throw AgentCallError(
                        .tls, .tlsFailed,
                        message: "the TLS handshake with \(host.id) at \(host.address) failed (\(error)): its certificate must come from the fleet CA and name baton://agent/\(host.id), and it must accept our controller certificate")
                }
                timedOut = Self.isTimeout(error)
                lastError = AgentCallError(
                    .unreachable, .unreachable,
                    message: "cannot reach \(host.id) at \(host.address) after \(attempt) attempt(s) in \(Self.seconds(clock.now - start)) s: \(Self.describe(error))")
            }
        }
        throw lastError
    }

    private static func seconds(_ duration: Duration) -> Int64 { duration.components.seconds }

    /// A connection, handshake or answer that did not come in time, by the error's type:
    /// the agent may be busy, not gone (a refused connection is gone).
    static func isTimeout(_ error: any Error) -> Bool {
        switch error {
        case let error as HTTPClientError:
            [.connectTimeout, .tlsHandshakeTimeout, .readTimeout, .writeTimeout, .deadlineExceeded, .getConnectionFromPoolTimeout]
                .contains(error)
        case let error as ChannelError:
            if case .connectTimeout = error { true } else { false }
        case let error as NIOConnectionError: error.connectionErrors.contains { isTimeout($0.error) }
        default: false
        }
    }

    private func decode<T: Decodable>(_ type: T.Type, _ response: HTTPClientResponse, _ host: Fleet.Host) async throws(AgentCallError) -> T {
        do {
            let body = try await response.body.collect(upTo: 16 * 1024 * 1024)
            return try BatonJSON.decode(T.self, from: Data(body.readableBytesView))
        } catch {
            throw AgentCallError(
                .badResponse, status: Int(response.status.code), .badResponse,
                message: "\(host.id) answered with a body that is not a \(T.self): \(error)")
        }
    }

    /// A failed handshake, by the error's type: the TLS library's own errors, also when
    /// they come wrapped in NIO's report of a failed connection attempt. Never by reading
    /// the error's text, which no library promises to keep.
    static func isTLSFailure(_ error: any Error) -> Bool {
        switch error {
        case is NIOSSLError, is NIOSSLExtraError, is BoringSSLError: true
        case let error as NIOConnectionError: error.connectionErrors.contains { isTLSFailure($0.error) }
        default: false
        }
    }

    static func describe(_ error: any Error) -> String {
        switch error {
        case let error as HTTPClientError: return error.shortDescription
        case let error as IOError: return String(cString: strerror(error.errnoCode)).lowercased()
        case let error as NIOConnectionError:
            if let first = error.connectionErrors.first { return describe(first.error) }
            return "cannot resolve \(error.host)"
        case let error as ChannelError where error == .connectTimeout(.zero) || "\(error)".contains("connectTimeout"):
            return "connection timed out"
        default: return String(describing: error)
        }
    }
}
