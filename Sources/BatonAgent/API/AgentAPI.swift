import BatonProtocol
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore

/// The agent's HTTPS API (docs/design.md §4) over a `DeploymentEngine`: routes, the identity
/// check and the error mapping, and the Hummingbird application that serves them over
/// mutual TLS 1.3. Used by `batond run` (through `AgentService`) and by tests alike.
///
/// | call | answers |
/// | --- | --- |
/// | `HEAD /v1/artifacts/sha256/{digest}` | 200 held, 404 not |
/// | `PUT /v1/artifacts/sha256/{digest}` | 201 stored, 200 already held; 400 `upload_incomplete`, 404, 411, 413, 422, 503 `agent_busy` |
/// | `POST /v1/deployments` | 202 `DeploymentAccepted`, 200 for an identical resend; 400, 403, 409 (`state_corrupt` among them), 413, 422 |
/// | `GET /v1/deployments/{id}` | 200 `DeploymentRecord`, 404, 409 `state_corrupt` |
/// | `GET /v1/deployments/{id}/events` | 200 NDJSON `DeploymentEvent`s until a terminal phase, 404 |
/// | `GET /v1/deployments/{id}/receipt` | 200 `SignedReceipt` once it has ended, 404 |
/// | `GET /v1/apps` | 200 `AppList` (an app with unreadable state is listed with `stateError`) |
/// | `GET /v1/apps/{app}` | 200 `AppStatus` (`stateError` likewise), 404 |
/// | `GET /v1/apps/{app}/releases/{release}` | 200 `ApprovedRelease` (the approved payload and its signers), 404 |
/// | `GET /v1/health` | 200 `AgentHealth` |
///
/// Every call needs a client certificate naming a controller (403 `forbidden_identity`
/// otherwise); every error is an `ErrorDocument`.
public struct AgentAPI: Sendable {
    /// Connection limits of the API server. Every field has a default.
    public struct Options: Sendable {
        /// A connection that sends nothing for this long (no TLS handshake, no request
        /// head, no body bytes) while a request is not being answered is closed.
        public var idleTimeout: Duration = .seconds(30)
        /// Connections served at once; more wait in the listen backlog.
        public var maxConnections: Int = 64
        /// A TLS handshake not completed within this is closed; at most half of
        /// `maxConnections` may be in their handshake at once, and at most
        /// `maxHandshakesPerPeer` from one address (`HandshakeGate`).
        public var handshakeTimeout: Duration = .seconds(10)
        public var maxHandshakesPerPeer: Int = 8
        /// Largest request head (all header fields together), and largest single field.
        public var maxHeaderBytes: Int = 32 << 10
        public var maxHeaderFieldBytes: Int = 16 << 10
        public var maxHeaderFields: Int = 64

        public init() {}
    }

    public let engine: DeploymentEngine
    public let metrics: AgentMetrics?
    /// Called with the id of every deployment the API starts (the metrics observer
    /// follows it to its end).
    public let onAccepted: @Sendable (String) -> Void

    /// The TLS material in use, whose key signs the audit head.
    public let tls: TLSContextStore?
    /// Every call is counted here (begun and ended): how `batond run` tells the agent is idle.
    public let activity: APIActivity

    public init(
        engine: DeploymentEngine, metrics: AgentMetrics? = nil, tls: TLSContextStore? = nil,
        activity: APIActivity = APIActivity(),
        onAccepted: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.engine = engine
        self.metrics = metrics
        self.tls = tls
        self.activity = activity
        self.onAccepted = onAccepted
    }

    /// The routes, behind the error mapping (outermost) and the identity check of the
    /// TLS client certificate.
    public func router() -> Router<AgentRequestContext> {
        router(peer: .tls)
    }

    /// The routes, with the identity check reading the peer from `peer`.
    func router(peer: PeerCertificateSource) -> Router<AgentRequestContext> {
        let router = Router(context: AgentRequestContext.self)
        router.add(middleware: APIActivityMiddleware(activity: activity))
        router.add(middleware: APIErrorMiddleware(metrics: metrics))
        router.add(middleware: PeerIdentityMiddleware(peer: peer))

        router.head("/v1/artifacts/sha256/:digest") { _, context in try await self.headArtifact(context) }
        router.put("/v1/artifacts/sha256/:digest") { request, context in try await self.putArtifact(request, context) }
        router.post("/v1/deployments") { request, context in try await self.postDeployment(request, context) }
        router.get("/v1/deployments/:id") { _, context in try await self.getDeployment(context) }
        router.get("/v1/deployments/:id/events") { _, context in try await self.getEvents(context) }
        router.get("/v1/deployments/:id/receipt") { _, context in try await self.getReceipt(context) }
        router.get("/v1/apps") { _, _ in try APIResponse.json(AppList(apps: await self.engine.apps())) }
        router.get("/v1/apps/:app") { _, context in try await self.getApp(context) }
        router.get("/v1/apps/:app/releases/:release") { _, context in try await self.getApprovedRelease(context) }
        router.get("/v1/health") { _, _ in
            let configuration = self.engine.configuration
            let audit = self.engine.auditStatus
            self.metrics?.auditChain(intact: audit.intact)
            return try APIResponse.json(
                AgentHealth(
                    status: audit.intact ? "ok" : "degraded",
                    hostID: configuration.hostID, environment: configuration.environment, version: AgentVersion.current,
                    startedAt: self.engine.startedAt, audit: audit))
        }
        router.get("/v1/audit/head") { request, _ in
            guard let key = self.tls?.current.signingKey else {
                throw RequestError(
                    .notFound,
                    "this agent's TLS key is not an ECDSA P-256 key, so it cannot sign its audit head")
            }
            var line: Int?
            if let text = request.uri.queryParameters.get("line") {
                guard let value = Int(text), value > 0 else {
                    throw RequestError(code: VerificationCode.malformed.rawValue, message: "line must be a positive integer")
                }
                line = value
            }
            return try APIResponse.json(try self.engine.signedAuditHead(key: key, line: line))
        }
        return router
    }

    /// The API server on `address`, serving TLS with whatever `tls` holds when each
    /// connection arrives. `onListening` gets the bound address (port 0 picks a free one).
    public func application(
        tls: TLSContextStore, address: ListenAddress, options: Options = Options(), logger: Logger,
        onListening: @escaping @Sendable (SocketAddress?) async -> Void = { _ in }
    ) -> Application<RouterResponder<AgentRequestContext>> {
        let http1 = HTTP1Channel.Configuration(
            additionalChannelHandlers: [ExpectContinueHandler()],
            idleTimeout: TimeAmount(options.idleTimeout),
            httpDecoderConfiguration: .init(
                maxHeaderFieldSize: options.maxHeaderFieldBytes, maxHeaderListSize: options.maxHeaderBytes,
                maxHeaderFieldCount: options.maxHeaderFields))
        let metrics = self.metrics
        let gate = HandshakeGate(
            limit: options.maxConnections / 2, perPeerLimit: options.maxHandshakesPerPeer,
            timeout: TimeAmount(options.handshakeTimeout))
        let server = HTTPServerBuilder { responder in
            ReloadableTLSChannel(
                base: HTTP1Channel(responder: responder, configuration: http1), store: tls, gate: gate, logger: logger,
                onHandshakeFailure: { code in metrics?.refused(code: code) })
        }
        return Application(
            router: router(), server: server,
            configuration: ApplicationConfiguration(
                address: .hostname(address.host, port: address.port), serverName: nil,
                availableConnectionsDelegate: MaximumAvailableConnections(options.maxConnections)),
            onServerRunning: { channel in await onListening(channel.localAddress) },
            logger: logger)
    }

    // MARK: Apps and deployments

    func getApp(_ context: AgentRequestContext) async throws -> Response {
        let app = try context.parameters.require("app")
        // PROTOCOL §10: a path parameter that is not a name names nothing (404).
        guard Name.isValid(app), let status = await engine.appStatus(app) else {
            throw RequestError(.notFound, "no app '\(app)' on this host")
        }
        return try APIResponse.json(status)
    }

    func getApprovedRelease(_ context: AgentRequestContext) async throws -> Response {
        let app = try context.parameters.require("app")
        let release = try context.parameters.require("release")
        guard let approved = await engine.approvedRelease(app: app, release: release) else {
            throw RequestError(.notFound, "this host holds no approved release '\(release)' of '\(app)'")
        }
        return try APIResponse.json(approved)
    }

    func postDeployment(_ request: Request, _ context: AgentRequestContext) async throws -> Response {
        if let declared = request.headers[.contentLength].flatMap(Int.init), declared > Envelope.maxEnvelopeBytes {
            throw RequestError(
                code: VerificationCode.tooLarge.rawValue,
                message: "the envelope is \(declared) bytes; at most \(Envelope.maxEnvelopeBytes) are accepted")
        }
        let body = try await request.body.collect(upTo: Envelope.maxEnvelopeBytes)
        let accepted = try await engine.submit(envelope: Array(buffer: body), peer: context.controller ?? "unknown")
        if !accepted.existing { onAccepted(accepted.id) }
        context.logger.info(
            accepted.existing ? "deployment resent" : "deployment started",
            metadata: ["baton.deployment.id": "\(accepted.id)"])
        var response = try APIResponse.json(accepted, status: accepted.existing ? .ok : .accepted)
        response.headers[.location] = "/v1/deployments/\(accepted.id)"
        return response
    }

    func getDeployment(_ context: AgentRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        guard var record = try await engine.readRecord(id) else { throw Self.noDeployment(id) }
        if record.phase.isTerminal { record.receipt = await engine.receipt(id) }
        return try APIResponse.json(record)
    }

    /// Every event from the first, then live ones, ending after the terminal phase. A
    /// client that goes away only ends its own subscription; at shutdown the stream is
    /// cut short and the client reads the record again later.
    func getEvents(_ context: AgentRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        guard let events = await engine.events(id) else { throw Self.noDeployment(id) }
        let logger = context.logger
        return Response(
            status: .ok,
            headers: [.contentType: "application/x-ndjson", .cacheControl: "no-store"],
            body: ResponseBody { writer in
                do {
                    for await event in events.cancelOnGracefulShutdown() {
                        var line = try BatonJSON.encode(event)
                        line.append(0x0A)
                        try await writer.write(ByteBuffer(bytes: line))
                    }
                    try await writer.finish(nil)
                } catch {
                    logger.debug("event stream ended early", metadata: ["baton.deployment.id": "\(id)", "error": "\(error)"])
                    throw error
                }
            })
    }

    static func noDeployment(_ id: String) -> RequestError {
        RequestError(.notFound, "no deployment '\(id)' on this host")
    }
}
