@testable import BatonAgent
import BatonProtocol
import BatonTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing

/// The agent's API driven in-process: requests go straight into its router (no sockets,
/// no TLS, no daemon), so routing, the identity check and the error mapping are tested
/// in milliseconds. The peer is played through `PeerCertificateSource`; the real TLS path
/// is DaemonTransportTests' and DaemonAPITests' job.
@Suite("The API in-process")
struct InProcessAPITests {
    static let controller = PeerCertificateSource(uris: { _ in ["baton://controller/ci"] })

    /// Runs `test` against a fresh agent whose peer is `peer`.
    func withAPI(
        peer: PeerCertificateSource = controller,
        _ test: @Sendable (any TestClientProtocol, AgentFixture, DeploymentEngine) async throws -> Void
    ) async throws {
        let fixture = try AgentFixture()
        defer { fixture.remove() }
        let engine = try fixture.engine()
        var logger = Logger(label: "api-test")
        logger.logLevel = .critical
        let app = Application(router: AgentAPI(engine: engine).router(peer: peer), logger: logger)
        try await app.test(.router) { client in try await test(client, fixture, engine) }
    }

    /// Checks that `response` is the protocol's error document with `status` and `code`:
    /// JSON, exactly `{"error": {"code", "message"}}`, a message for a person.
    func expectError(
        _ response: TestResponse, _ status: Int, _ code: String, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let body = String(buffer: response.body)
        #expect(response.status.code == status, "\(body)", sourceLocation: sourceLocation)
        #expect(response.headers[.contentType] == "application/json", sourceLocation: sourceLocation)
        let object = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
        #expect(object.map { Array($0.keys) } == ["error"], "\(body)", sourceLocation: sourceLocation)
        let error = object?["error"] as? [String: Any]
        #expect(error.map { Set($0.keys) } == ["code", "message"], "\(body)", sourceLocation: sourceLocation)
        let document = try BatonJSON.decoder().decode(ErrorDocument.self, from: Data(body.utf8))
        #expect(document.error.code == code, "\(body)", sourceLocation: sourceLocation)
        #expect(!document.error.message.isEmpty, sourceLocation: sourceLocation)
    }

    // MARK: Routing

    @Test("an unknown path is 404 not_found, with an error document")
    func unknownPath() async throws {
        try await withAPI { client, _, _ in
            for path in ["/", "/v1", "/v1/nothing-here", "/v2/health", "/v1/deployments", "/v1/apps/web/releases"] {
                try expectError(try await client.execute(uri: path, method: .get), 404, "not_found")
            }
        }
    }

    @Test("a known path with a method it does not take names no endpoint: 404 not_found")
    func wrongMethod() async throws {
        try await withAPI { client, _, _ in
            try expectError(try await client.execute(uri: "/v1/health", method: .post), 404, "not_found")
            try expectError(try await client.execute(uri: "/v1/apps", method: .delete), 404, "not_found")
            try expectError(try await client.execute(uri: "/v1/deployments", method: .get), 404, "not_found")
            try expectError(try await client.execute(uri: "/v1/deployments/web-1", method: .put), 404, "not_found")
        }
    }

    @Test("the routes answer a controller")
    func routes() async throws {
        try await withAPI { client, fixture, _ in
            let health = try await client.execute(uri: "/v1/health", method: .get)
            #expect(health.status == .ok)
            #expect(health.headers[.contentType] == "application/json")
            let decoded = try BatonJSON.decoder().decode(AgentHealth.self, from: Data(String(buffer: health.body).utf8))
            #expect(decoded.hostID == fixture.hostID)
            #expect(decoded.status == "ok")
            let apps = try await client.execute(uri: "/v1/apps", method: .get)
            #expect(apps.status == .ok)
            #expect(try BatonJSON.decoder().decode(AppList.self, from: Data(String(buffer: apps.body).utf8)).apps.isEmpty)
        }
    }

    // MARK: Identity

    @Test("no client certificate: 403 forbidden_identity, before any route is looked at")
    func noCertificate() async throws {
        // The real TLS source: the in-process connection has no TLS, hence no certificate.
        try await withAPI(peer: .tls) { client, _, _ in
            for (path, method) in [("/v1/health", HTTPRequest.Method.get), ("/v1/apps", .get), ("/v1/nothing-here", .get), ("/v1/deployments", .post)] {
                let response = try await client.execute(uri: path, method: method)
                try expectError(response, 403, "forbidden_identity")
                #expect(String(buffer: response.body).contains("no TLS client certificate"))
            }
        }
    }

    @Test("a certificate that names no controller: 403 forbidden_identity", arguments: [
        (["baton://agent/host-2"], "names baton://agent/host-2"),
        ([], "no baton:// identity"),
        (["https://example.com/ci"], "no baton:// identity"),
        (["baton://controller/ci", "BATON://controller/other"], "2 baton:// identities"),
        (["baton://controller/CI"], "is not a Baton identity"),
        (["baton://operator/ci"], "is not a Baton identity"),
    ])
    func wrongIdentity(uris: [String], says: String) async throws {
        try await withAPI(peer: PeerCertificateSource(uris: { _ in uris })) { client, _, engine in
            let response = try await client.execute(uri: "/v1/health", method: .get)
            try expectError(response, 403, "forbidden_identity")
            #expect(String(buffer: response.body).contains(says), "\(String(buffer: response.body))")
            // Not even a refused deployment reaches the engine.
            let deploy = try await client.execute(uri: "/v1/deployments", method: .post, body: ByteBuffer(string: "{}"))
            try expectError(deploy, 403, "forbidden_identity")
            #expect(await engine.apps().isEmpty)
        }
    }

    // MARK: Error mapping

    @Test("a body that is not an envelope: 400 malformed", arguments: ["", "{", "not json", "[]", #"{"payload": 1}"#])
    func malformedEnvelope(body: String) async throws {
        try await withAPI { client, _, _ in
            let response = try await client.execute(uri: "/v1/deployments", method: .post, body: ByteBuffer(string: body))
            try expectError(response, 400, "malformed")
        }
    }

    @Test("an envelope over the cap: 413 too_large, by its declared length and by its bytes")
    func oversizedEnvelope() async throws {
        try await withAPI { client, _, _ in
            let big = ByteBuffer(repeating: 0x20, count: Envelope.maxEnvelopeBytes + 1)
            try expectError(try await client.execute(uri: "/v1/deployments", method: .post, body: big), 413, "too_large")
        }
    }

    @Test("a refused envelope: the verification code and its status; the host unchanged")
    func refusedEnvelope() async throws {
        try await withAPI { client, fixture, engine in
            let v1 = try fixture.artifact("v1")
            let untrusted = try fixture.envelope("v1", artifact: v1, signers: [SigningKey()])
            let response = try await client.execute(
                uri: "/v1/deployments", method: .post, body: ByteBuffer(bytes: untrusted.bytes))
            try expectError(response, 403, "untrusted_key")
            #expect(await engine.apps().isEmpty)
            #expect(fixture.current() == nil)
            // The refusal is audited under the controller the certificate named.
            let audit = try String(contentsOfFile: fixture.layout.auditLog, encoding: .utf8)
            #expect(audit.contains(#""peer":"ci""#), "\(audit)")
            #expect(audit.contains("untrusted_key"))
        }
    }

    @Test("unknown deployments, apps, releases and artifacts: 404 not_found")
    func unknownResources() async throws {
        try await withAPI { client, _, _ in
            let digest = String(repeating: "ab", count: 32)
            for path in [
                "/v1/deployments/web-99", "/v1/deployments/web-99/events", "/v1/apps/nope", "/v1/apps/Bad%20Name",
                "/v1/apps/web/releases/v1", "/v1/audit/head",
            ] {
                try expectError(try await client.execute(uri: path, method: .get), 404, "not_found")
            }
            try expectError(
                try await client.execute(uri: "/v1/artifacts/sha256/NOT-A-DIGEST", method: .put, body: ByteBuffer(string: "x")),
                404, "not_found")
            // HEAD: the status, and no body.
            let head = try await client.execute(uri: "/v1/artifacts/sha256/\(digest)", method: .head)
            #expect(head.status == .notFound)
            #expect(head.body.readableBytes == 0)
        }
    }

    @Test("uploads: no length 411, over the agent's maximum 413, bytes of another digest 422")
    func uploadRefusals() async throws {
        try await withAPI { client, fixture, _ in
            let digest = String(repeating: "ab", count: 32)
            let path = "/v1/artifacts/sha256/\(digest)"
            try expectError(try await client.execute(uri: path, method: .put), 411, "length_required")
            let tooLarge = try await client.execute(
                uri: path, method: .put, headers: [.contentLength: "\(UInt64(5) << 30)"])
            try expectError(tooLarge, 413, "artifact_too_large")
            let mismatch = try await client.execute(uri: path, method: .put, body: ByteBuffer(string: "hello"))
            try expectError(mismatch, 422, "digest_mismatch")
            #expect(!FileManager.default.fileExists(atPath: fixture.layout.artifact(digest)))
        }
    }

    @Test("an upload of the right bytes: 201, then 200 as already held")
    func upload() async throws {
        try await withAPI { client, _, _ in
            let bytes = ByteBuffer(string: "an artifact\n")
            let digest = Digest.sha256Hex(Data("an artifact\n".utf8))
            let path = "/v1/artifacts/sha256/\(digest)"
            let stored = try await client.execute(uri: path, method: .put, body: bytes)
            #expect(stored.status == .created, "\(String(buffer: stored.body))")
            let again = try await client.execute(uri: path, method: .put, body: bytes)
            #expect(again.status == .ok)
            let head = try await client.execute(uri: path, method: .head)
            #expect(head.status == .ok)
            #expect(head.headers[.contentLength] == "12")
        }
    }
}
