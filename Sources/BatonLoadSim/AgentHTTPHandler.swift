import BatonProtocol
import Foundation
import NIOCore
import NIOHTTP1

/// The agent API of one simulated agent over HTTP/1.1 (behind TLS): the routes of
/// Sources/BatonAgent/API/AgentAPI.swift that the controller calls, answering with the
/// same wire types and error documents. One handler per connection, on its event loop.
final class AgentHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let agent: SimulatedAgent
    private var request: HTTPRequestHead?
    /// The body of a `POST` (an envelope), capped one byte past the largest accepted.
    private var body = ByteBuffer()
    /// Bytes of the body so far (uploads are counted and dropped).
    private var received: UInt64 = 0

    init(agent: SimulatedAgent) { self.agent = agent }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
            body.clear()
            received = 0
            if head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" }) {
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
            }
        case .body(var chunk):
            received += UInt64(chunk.readableBytes)
            if request?.method == .POST, body.readableBytes <= Envelope.maxEnvelopeBytes { body.writeBuffer(&chunk) }
        case .end:
            guard let head = request else { return }
            request = nil
            route(context, head)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A refused handshake or a peer gone mid-request: this connection is done.
        context.close(promise: nil)
    }

    // MARK: Routing

    private func route(_ context: ChannelHandlerContext, _ head: HTTPRequestHead) {
        let parts = head.uri.split(separator: "?", maxSplits: 1)
        let path = parts.first.map(String.init) ?? ""
        let query = parts.count > 1 ? String(parts[1]) : ""
        guard let route = AgentRoute(method: head.method, path: path) else {
            return refuse(context, head, AgentRefusal(404, "not_found", "\(head.method) \(path) is not a route of the agent API"))
        }
        switch route {
        case .health:
            json(context, head, .ok, agent.health())
        case .apps:
            json(context, head, .ok, agent.apps())
        case .app(let app):
            if let status = agent.appStatus(app) { json(context, head, .ok, status) } else {
                refuse(context, head, AgentRefusal(404, "not_found", "no app '\(app)' on this host"))
            }
        case .hasArtifact(let digest):
            if let size = agent.artifactSize(digest) {
                respond(context, head, .ok, headers: [("Content-Length", "\(size)")], body: nil)
            } else {
                respond(context, head, .notFound, headers: [("Content-Length", "0")], body: nil)
            }
        case .putArtifact(let digest):
            upload(context, head, digest)
        case .submit:
            guard body.readableBytes <= Envelope.maxEnvelopeBytes else {
                return refuse(context, head, AgentRefusal(
                    413, VerificationCode.tooLarge.rawValue, "the envelope is over \(Envelope.maxEnvelopeBytes) bytes"))
            }
            do {
                let accepted = try agent.submit(envelope: Array(buffer: body))
                json(context, head, accepted.existing ? .ok : .accepted, accepted,
                     headers: [("Location", "/v1/deployments/\(accepted.id)")])
            } catch {
                refuse(context, head, error)
            }
        case .record(let id):
            if let record = agent.record(id) { json(context, head, .ok, record) } else { refuse(context, head, Self.noDeployment(id)) }
        case .events(let id):
            if let schedule = agent.schedule(id) { stream(context, head, schedule) } else { refuse(context, head, Self.noDeployment(id)) }
        case .receipt(let id):
            switch agent.receipt(id) {
            case .unknown: refuse(context, head, Self.noDeployment(id))
            case .running(let phase):
                refuse(context, head, AgentRefusal(
                    404, "not_found", "deployment '\(id)' is still running (\(phase.rawValue)); its receipt is signed when it ends"))
            case .signed(let receipt): json(context, head, .ok, receipt)
            }
        case .auditHead:
            var line: Int?
            if let text = query.split(separator: "&").first(where: { $0.hasPrefix("line=") })?.dropFirst(5) {
                guard let value = Int(text), value > 0 else {
                    return refuse(context, head, AgentRefusal(400, VerificationCode.malformed.rawValue, "line must be a positive integer"))
                }
                line = value
            }
            if let signed = agent.auditHead(line: line) { json(context, head, .ok, signed) } else {
                refuse(context, head, AgentRefusal(500, "internal_error", "signing the audit head failed"))
            }
        }
    }

    static func noDeployment(_ id: String) -> AgentRefusal {
        AgentRefusal(404, "not_found", "no deployment '\(id)' on this host")
    }

    /// The body was read (and counted) as it came; what remains is the agent's verdict.
    private func upload(_ context: ChannelHandlerContext, _ head: HTTPRequestHead, _ digest: String) {
        guard Digest.isSHA256Hex(digest) else {
            return refuse(context, head, AgentRefusal(404, "not_found", "'\(digest)' is not a lowercase hex SHA-256 digest, so no artifact"))
        }
        guard let length = head.headers.first(name: "content-length").flatMap(UInt64.init) else {
            return refuse(context, head, AgentRefusal(411, "length_required", "an artifact upload needs a Content-Length header giving its exact size"))
        }
        guard received == length else {
            return refuse(context, head, AgentRefusal(
                400, "upload_incomplete", "the upload ended after \(received) of \(length) bytes; nothing was kept"))
        }
        let existing = agent.artifactSize(digest) != nil
        agent.storeArtifact(digest, size: length)
        json(context, head, existing ? .ok : .created, ArtifactReceipt(sha256: digest, size: length, existing: existing))
    }

    /// NDJSON events: those already due at once, each later one when it is due, then the end.
    private func stream(
        _ context: ChannelHandlerContext, _ head: HTTPRequestHead, _ schedule: [(due: NIODeadline, event: DeploymentEvent)]
    ) {
        var headers = HTTPHeaders([("Content-Type", "application/x-ndjson"), ("Cache-Control", "no-store")])
        headers.add(name: "Transfer-Encoding", value: "chunked")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers))), promise: nil)
        let now = NIODeadline.now()
        let keepAlive = head.isKeepAlive
        let loop = context.eventLoop.assumeIsolated()
        for (index, item) in schedule.enumerated() {
            let last = index == schedule.count - 1
            let send = { [self] in
                guard context.channel.isActive else { return }
                guard let line = try? BatonJSON.encode(item.event) else { return }
                var buffer = context.channel.allocator.buffer(capacity: line.count + 1)
                buffer.writeBytes(line)
                buffer.writeInteger(UInt8(ascii: "\n"))
                context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
                if last { finish(context, keepAlive: keepAlive) } else { context.flush() }
            }
            if item.due <= now { send() } else { loop.scheduleTask(deadline: item.due, send) }
        }
        if schedule.isEmpty { finish(context, keepAlive: keepAlive) } else if schedule[0].due <= now { context.flush() }
    }

    // MARK: Answers

    private func json(
        _ context: ChannelHandlerContext, _ head: HTTPRequestHead, _ status: HTTPResponseStatus, _ value: some Encodable,
        headers: [(String, String)] = []
    ) {
        do {
            let data = try BatonJSON.encode(value)
            respond(context, head, status, headers: headers + [("Content-Type", "application/json")], body: data)
        } catch {
            refuse(context, head, AgentRefusal(500, "internal_error", "encoding the answer failed: \(error)"))
        }
    }

    private func refuse(_ context: ChannelHandlerContext, _ head: HTTPRequestHead, _ refusal: AgentRefusal) {
        let data = (try? BatonJSON.encode(ErrorDocument(code: refusal.info.code, message: refusal.info.message))) ?? Data()
        respond(context, head, HTTPResponseStatus(statusCode: refusal.status), headers: [("Content-Type", "application/json")], body: data)
    }

    private func respond(
        _ context: ChannelHandlerContext, _ head: HTTPRequestHead, _ status: HTTPResponseStatus, headers: [(String, String)],
        body: Data?
    ) {
        var fields = HTTPHeaders(headers)
        if let body { fields.replaceOrAdd(name: "Content-Length", value: "\(body.count)") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: fields))), promise: nil)
        if let body, head.method != .HEAD {
            var buffer = context.channel.allocator.buffer(capacity: body.count)
            buffer.writeBytes(body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        finish(context, keepAlive: head.isKeepAlive)
    }

    private func finish(_ context: ChannelHandlerContext, keepAlive: Bool) {
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive { done.assumeIsolated().whenComplete { _ in context.close(promise: nil) } }
    }
}
