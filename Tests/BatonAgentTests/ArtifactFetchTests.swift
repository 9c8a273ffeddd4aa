@testable import BatonAgent
import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

/// Agents fetch the artifact from the manifest's `artifact.url` when it was not uploaded:
/// a real nginx on loopback (HTTPS with a certificate from the fleet CA, or plain HTTP),
/// the engine in-process, every refusal leaving the host on its previous release and
/// nothing cached under the digest.
@Suite("Artifact fetch", .serialized)
struct ArtifactFetchTests {
    /// A host whose agent trusts the fleet CA of `DaemonPKI` (its `tls.ca`), with short
    /// fetch timings, and an nginx serving over HTTPS with a certificate of that CA for
    /// 127.0.0.1 (the agent certificate's key pair: any certificate the CA issued will do).
    final class Setup: @unchecked Sendable {
        let fixture: AgentFixture
        let pki: DaemonPKI
        let nginx: NginxServer

        init(fetch: String = "", https: Bool = true, serverDirectives: String = "", limits: String = "") throws {
            fixture = try AgentFixture(extraConfig: """
                limits: {\(limits)}
                tls:
                  certificate: pki/agent/host-1.pem
                  privateKey: pki/agent/host-1.key
                  ca: pki/ca/ca.pem
                fetch:
                  retryDelay: 50ms
                  progressInterval: 100ms
                  idleTimeout: 2s
                \(fetch.split(separator: "\n").map { "  \($0)" }.joined(separator: "\n"))
                """)
            do {
                pki = try DaemonPKI(in: fixture.dir.child("pki"), hostID: "host-1")
                nginx = try NginxServer(
                    tls: https ? .init(certificate: pki.agent.certificate, key: pki.agent.key) : nil,
                    serverDirectives: serverDirectives)
            } catch {
                fixture.remove()
                throw error
            }
        }

        func remove() {
            nginx.stop()
            fixture.remove()
        }

        /// Files in the cache under a digest, and half-received ones.
        func cached() -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: fixture.layout.artifactsDirectory)) ?? []).sorted()
        }

        func temporaryFiles() -> [String] {
            (try? FileManager.default.contentsOfDirectory(atPath: fixture.layout.artifactsTemporaryDirectory)) ?? []
        }

        /// v1, deployed from a local file: the release a refused fetch must leave live.
        func onV1(_ engine: DeploymentEngine) async throws {
            let v1 = try fixture.artifact("v1")
            let record = try await engine.deploy(try fixture.envelope("v1", artifact: v1), artifact: v1.path)
            try #require(record.phase == .succeeded, "\(record.events.map(\.message))")
        }
    }

    /// A release with `bytes` of incompressible content, so the tar.gz is about that big.
    static func bigArtifact(_ fixture: AgentFixture, _ release: String, bytes: Int) throws -> AgentFixture.Artifact {
        var generator = SystemRandomNumberGenerator()
        let random = (0..<bytes * 3 / 4).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return try fixture.artifact(release, files: ["blob.txt": Data(random).base64EncodedString()])
    }

    static func messages(_ record: DeploymentRecord) -> [String] { record.events.map(\.message) }

    @Test("HTTPS with the fleet CA: the agent fetches the artifact itself, verifies it and deploys")
    func fetchOverHTTPS() async throws {
        let setup = try Setup()
        defer { setup.remove() }
        let engine = try setup.fixture.engine()
        let v1 = try setup.fixture.artifact("v1", files: ["app.txt": "fetched\n"])
        try setup.nginx.serve(v1.path, at: "/artifacts/web-v1.tar.gz")
        let url = setup.nginx.url("/artifacts/web-v1.tar.gz?token=secret-token")
        #expect(url.hasPrefix("https://"))

        let record = try await engine.deploy(try setup.fixture.envelope("v1", artifact: v1, url: url), artifact: nil)
        #expect(record.phase == .succeeded, "\(Self.messages(record))")
        #expect(setup.fixture.current() == "v1")
        #expect(setup.fixture.currentMatches(v1))
        // The fetched copy was verified, then consumed by the unpack that read it.
        #expect(setup.cached().isEmpty)
        #expect(record.events.contains { $0.message.hasPrefix("unpacked") }, "\(Self.messages(record))")
        #expect(setup.temporaryFiles().isEmpty)
        let messages = Self.messages(record)
        #expect(messages.contains { $0.hasPrefix("fetching ") && $0.contains("from https://127.0.0.1:\(setup.nginx.port)") }, "\(messages)")
        #expect(messages.contains { $0.hasPrefix("fetched and verified \(ByteCount(v1.size))") && $0.contains("1 attempt(s)") }, "\(messages)")
        // The URL's path and query (a token, often) are never written into the record.
        #expect(!messages.joined().contains("secret-token") && !messages.joined().contains("/artifacts/"))
        #expect(setup.nginx.accessLog.count == 1 && setup.nginx.accessLog[0].hasPrefix("200 \(v1.size) "), "\(setup.nginx.accessLog)")
    }

    @Test("a connection cut mid-way is resumed with Range from the byte it stopped at")
    func cutConnectionResumes() async throws {
        let setup = try Setup()
        defer { setup.remove() }
        let engine = try setup.fixture.engine()
        let v1 = try Self.bigArtifact(setup.fixture, "v1", bytes: 256 << 10)
        try setup.nginx.serve(v1.path, at: "/web-v1.tar.gz")
        let proxy = try CuttingProxy(upstreamPort: setup.nginx.port, cutAfter: 100_000)
        defer { proxy.stop() }

        let record = try await engine.deploy(
            try setup.fixture.envelope("v1", artifact: v1, url: proxy.url("/web-v1.tar.gz", scheme: "https")), artifact: nil)
        #expect(record.phase == .succeeded, "\(Self.messages(record))")
        #expect(setup.fixture.currentMatches(v1))
        #expect(setup.cached().isEmpty, "consumed by its unpack")
        #expect(proxy.connections == 2)
        // nginx saw the whole file asked for, then the rest from where the cut left off.
        let log = setup.nginx.accessLog
        #expect(log.count == 2, "\(log)")
        let resumed = try #require(log.last)
        let range = try #require(resumed.firstMatch(of: #/^206 (\d+) "GET /web-v1.tar.gz HTTP/1.1" "bytes=(\d+)-" "([^"]+)" /#), "\(log)")
        let from = try #require(UInt64(range.2))
        #expect(from > 0 && from < 100_000)
        #expect(UInt64(range.1) == v1.size - from)
        #expect(range.3 != "-", "If-Range names the version of the file whose bytes are held")
        let messages = Self.messages(record)
        #expect(messages.contains { $0.contains("retrying in") && $0.contains("from byte \(from)") }, "\(messages)")
        #expect(messages.contains { $0.contains("resumed 1 time(s)") }, "\(messages)")
    }

    @Test("a server that ignores Range sends the whole artifact again: the agent starts over from byte 0")
    func serverIgnoringRange() async throws {
        let setup = try Setup(serverDirectives: "max_ranges 0;")
        defer { setup.remove() }
        let engine = try setup.fixture.engine()
        let v1 = try Self.bigArtifact(setup.fixture, "v1", bytes: 192 << 10)
        try setup.nginx.serve(v1.path, at: "/web-v1.tar.gz")
        let proxy = try CuttingProxy(upstreamPort: setup.nginx.port, cutAfter: 80_000)
        defer { proxy.stop() }

        let record = try await engine.deploy(
            try setup.fixture.envelope("v1", artifact: v1, url: proxy.url("/web-v1.tar.gz", scheme: "https")), artifact: nil)
        #expect(record.phase == .succeeded, "\(Self.messages(record))")
        #expect(setup.fixture.currentMatches(v1))
        #expect(setup.cached().isEmpty, "consumed by its unpack")
        let log = setup.nginx.accessLog
        #expect(log.count == 2 && log[1].hasPrefix("200 \(v1.size) ") && log[1].contains("\"bytes="), "\(log)")
        #expect(Self.messages(record).contains { $0.contains("restarted from byte 0 1 time(s)") }, "\(Self.messages(record))")
    }

    @Test("bytes that do not hash to the manifest's digest are refused: previous release live, nothing cached")
    func wrongDigest() async throws {
        let setup = try Setup()
        defer { setup.remove() }
        let engine = try setup.fixture.engine()
        try await setup.onV1(engine)
        let v2 = try setup.fixture.artifact("v2")
        // The same size, one byte changed: only the digest can tell.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: v2.path))
        bytes[bytes.count / 2] ^= 0xFF
        let tampered = setup.fixture.dir.child("tampered.tar.gz")
        try bytes.write(to: URL(fileURLWithPath: tampered))
        try setup.nginx.serve(tampered, at: "/web-v2.tar.gz")
        let before = setup.cached()

        let record = try await engine.deploy(
            try setup.fixture.envelope("v2", artifact: v2, url: setup.nginx.url("/web-v2.tar.gz")), artifact: nil)
        #expect(record.phase == .failed)
        #expect(record.error?.code == "digest_mismatch", "\(String(describing: record.error))")
        #expect(setup.fixture.current() == "v1")
        #expect(setup.cached() == before && !setup.cached().contains(v2.sha256))
        #expect(setup.temporaryFiles().isEmpty)
        #expect(setup.nginx.accessLog.count == 1, "a wrong digest is not retried: \(setup.nginx.accessLog)")
    }

    @Test("a server that serves another size is refused from its Content-Length, before any byte is kept")
    func wrongSize() async throws {
        let setup = try Setup()
        defer { setup.remove() }
        let engine = try setup.fixture.engine()
        try await setup.onV1(engine)
        let v2 = try setup.fixture.artifact("v2")
        let other = try setup.fixture.artifact("v2-other", files: ["extra.txt": String(repeating: "x", count: 5000)])
        try setup.nginx.serve(other.path, at: "/web-v2.tar.gz")

        let record = try await engine.deploy(
            try setup.fixture.envelope("v2", artifact: v2, url: setup.nginx.url("/web-v2.tar.gz")), artifact: nil)
        #expect(record.phase == .failed)
        #expect(record.error?.code == "size_mismatch")
        #expect(record.error?.message.contains("serves \(other.size) bytes, but the manifest names \(v2.size)") == true, "\(String(describing: record.error))")
        #expect(setup.fixture.current() == "v1")
        #expect(!setup.cached().contains(v2.sha256) && setup.temporaryFiles().isEmpty)
    }

    @Test("a server that trickles hits the fetch deadline: a clear error, with progress events on the way")
    func tricklingServer() async throws {
        let setup = try Setup(fetch: "deadline: 2s", serverDirectives: "limit_rate 8k;")
        defer { setup.remove() }
        let engine = try setup.fixture.engine()
        try await setup.onV1(engine)
        let v2 = try Self.bigArtifact(setup.fixture, "v2", bytes: 128 << 10)
        try setup.nginx.serve(v2.path, at: "/web-v2.tar.gz")

        let started = ContinuousClock.now
        let record = try await engine.deploy(
            try setup.fixture.envelope("v2", artifact: v2, url: setup.nginx.url("/web-v2.tar.gz")), artifact: nil)
        let elapsed = ContinuousClock.now - started
        #expect(record.phase == .failed)
        #expect(record.error?.code == "artifact_fetch_deadline", "\(String(describing: record.error))")
        #expect(record.error?.message.contains("did not finish within 2s (fetch.deadline)") == true, "\(String(describing: record.error))")
        #expect(elapsed < .seconds(4), "the deadline holds: \(elapsed) \(Self.messages(record))")
        #expect(setup.fixture.current() == "v1")
        #expect(!setup.cached().contains(v2.sha256) && setup.temporaryFiles().isEmpty)
        // Progress: bytes so far, at most one event per progressInterval (100ms) over 2 s
        // (nginx's limit_rate sends a burst about every second).
        let progress = Self.messages(record).filter { $0.hasPrefix("fetched ") && $0.contains(" of \(ByteCount(v2.size))") }
        #expect(progress.count >= 1 && progress.count <= 21, "\(progress)")
        #expect(progress.allSatisfy { $0.hasSuffix("/s") && $0.contains("%)") }, "\(progress)")
    }

    @Test("the agent's own limits hold before a byte is fetched: its maximum artifact size, its cache")
    func limits() async throws {
        let big = try Setup(limits: "maxArtifactSize: 1KiB")
        defer { big.remove() }
        let v1 = try Self.bigArtifact(big.fixture, "v1", bytes: 8 << 10)
        try #require(v1.size > 2048)
        try big.nginx.serve(v1.path, at: "/web-v1.tar.gz")
        let tooLarge = try await big.fixture.engine().deploy(
            try big.fixture.envelope("v1", artifact: v1, url: big.nginx.url("/web-v1.tar.gz")), artifact: nil)
        #expect(tooLarge.error?.code == "artifact_too_large", "\(String(describing: tooLarge.error))")

        let small = try Setup(limits: "artifactCache: 1KiB")
        defer { small.remove() }
        try small.nginx.serve(v1.path, at: "/web-v1.tar.gz")
        let full = try await small.fixture.engine().deploy(
            try small.fixture.envelope("v1", artifact: v1, url: small.nginx.url("/web-v1.tar.gz")), artifact: nil)
        #expect(full.error?.code == "cache_full", "\(String(describing: full.error))")
        #expect(big.nginx.accessLog.isEmpty && small.nginx.accessLog.isEmpty, "nothing was asked of the server")
        #expect(big.cached().isEmpty && small.cached().isEmpty)
    }

    @Test("a 404 ends the fetch at once with the status, and the host stays as it was")
    func notFound() async throws {
        let setup = try Setup()
        defer { setup.remove() }
        let engine = try setup.fixture.engine()
        try await setup.onV1(engine)
        let v2 = try setup.fixture.artifact("v2")

        let record = try await engine.deploy(
            try setup.fixture.envelope("v2", artifact: v2, url: setup.nginx.url("/missing/web-v2.tar.gz")), artifact: nil)
        #expect(record.phase == .failed)
        #expect(record.error?.code == "artifact_fetch_failed")
        #expect(record.error?.message.contains("https://127.0.0.1:\(setup.nginx.port) answered 404 Not Found") == true, "\(String(describing: record.error))")
        #expect(setup.nginx.accessLog.count == 1, "a 404 is not retried")
        #expect(setup.fixture.current() == "v1")
        #expect(!setup.cached().contains(v2.sha256))
    }

    @Test("plain HTTP only when fetch.allowHTTP is set; a certificate the trust setting does not accept is refused")
    func transportRules() async throws {
        let plain = try Setup(https: false)
        defer { plain.remove() }
        let v1 = try plain.fixture.artifact("v1")
        try plain.nginx.serve(v1.path, at: "/web-v1.tar.gz")
        let engine = try plain.fixture.engine()
        let refused = try await engine.deploy(
            try plain.fixture.envelope("v1", artifact: v1, url: plain.nginx.url("/web-v1.tar.gz")), artifact: nil)
        #expect(refused.phase == .failed)
        #expect(refused.error?.code == "artifact_fetch_failed")
        #expect(refused.error?.message.contains("fetch.allowHTTP") == true)
        #expect(plain.nginx.accessLog.isEmpty, "nothing was asked of the server")

        let allowed = try Setup(fetch: "allowHTTP: true", https: false)
        defer { allowed.remove() }
        try allowed.nginx.serve(v1.path, at: "/web-v1.tar.gz")
        let record = try await allowed.fixture.engine().deploy(
            try allowed.fixture.envelope("v1", artifact: v1, url: allowed.nginx.url("/web-v1.tar.gz")), artifact: nil)
        #expect(record.phase == .succeeded, "\(Self.messages(record))")

        // The system's roots do not include the fleet CA.
        let system = try Setup(fetch: "trust: system")
        defer { system.remove() }
        try system.nginx.serve(v1.path, at: "/web-v1.tar.gz")
        let untrusted = try await system.fixture.engine().deploy(
            try system.fixture.envelope("v1", artifact: v1, url: system.nginx.url("/web-v1.tar.gz")), artifact: nil)
        #expect(untrusted.phase == .failed)
        #expect(untrusted.error?.code == "artifact_fetch_failed")
        #expect(untrusted.error?.message.contains("refused by TLS") == true, "\(String(describing: untrusted.error))")
        #expect(system.cached().isEmpty)
    }

    @Test("connections that fail are retried with a growing backoff; too many in a row without a byte end the fetch")
    func retries() async throws {
        let setup = try Setup(fetch: "attempts: 3")
        defer { setup.remove() }
        let engine = try setup.fixture.engine()
        let v1 = try setup.fixture.artifact("v1")
        try setup.nginx.serve(v1.path, at: "/web-v1.tar.gz")
        // Two connections closed before a byte came back, then a good one.
        let flaky = try CuttingProxy(upstreamPort: setup.nginx.port, cutAfter: 0, cutConnections: 2)
        defer { flaky.stop() }
        let record = try await engine.deploy(
            try setup.fixture.envelope("v1", artifact: v1, url: flaky.url("/web-v1.tar.gz", scheme: "https")), artifact: nil)
        #expect(record.phase == .succeeded, "\(Self.messages(record))")
        let retries = Self.messages(record).filter { $0.hasPrefix("fetch attempt failed") }
        #expect(retries.count == 2, "\(retries)")
        #expect(retries.first?.contains("(1 in a row without a new byte)") == true && retries.first?.contains("retrying in 0.05s") == true, "\(retries)")
        #expect(retries.last?.contains("(2 in a row without a new byte)") == true && retries.last?.contains("retrying in 0.1s") == true, "\(retries)")
        #expect(Self.messages(record).contains { $0.contains("(3 attempt(s))") })

        // Never a byte: the third failure in a row ends it, and v1 stays.
        let v2 = try setup.fixture.artifact("v2")
        try setup.nginx.serve(v2.path, at: "/web-v2.tar.gz")
        let dead = try CuttingProxy(upstreamPort: setup.nginx.port, cutAfter: 0, cutConnections: 100)
        defer { dead.stop() }
        let failed = try await engine.deploy(
            try setup.fixture.envelope("v2", artifact: v2, url: dead.url("/web-v2.tar.gz", scheme: "https")), artifact: nil)
        #expect(failed.phase == .failed)
        #expect(failed.error?.code == "artifact_fetch_failed")
        #expect(failed.error?.message.contains("failed 3 time(s) in a row without a new byte (fetch.attempts)") == true, "\(String(describing: failed.error))")
        #expect(dead.connections == 3)
        #expect(setup.fixture.current() == "v1")
        #expect(!setup.cached().contains(v2.sha256) && setup.temporaryFiles().isEmpty)
    }

    @Test("fetch.maxConcurrent: a second deployment waits for a slot, and the transfers never overlap")
    func concurrentFetchesAreBounded() async throws {
        let setup = try Setup(fetch: "maxConcurrent: 1", serverDirectives: "limit_rate 256k;")
        defer { setup.remove() }
        let engine = try setup.fixture.engine()
        let web = try Self.bigArtifact(setup.fixture, "w1", bytes: 160 << 10)
        let api = try Self.bigArtifact(setup.fixture, "a1", bytes: 160 << 10)
        try setup.nginx.serve(web.path, at: "/web.tar.gz")
        try setup.nginx.serve(api.path, at: "/api.tar.gz")
        let now = Date()
        func envelope(_ app: String, _ release: String, _ artifact: AgentFixture.Artifact, _ path: String) throws -> [UInt8] {
            let manifest = Manifest(
                app: app, release: release, serial: 1, environment: setup.fixture.environment,
                issuedAt: now.addingTimeInterval(-60), expiresAt: now.addingTimeInterval(3600),
                artifact: ArtifactReference(sha256: artifact.sha256, size: artifact.size, format: .tarGz, url: setup.nginx.url(path)))
            return try setup.fixture.envelope(manifest, signers: [setup.fixture.key]).bytes
        }
        let first = try await engine.submit(envelope: try envelope("web", "w1", web, "/web.tar.gz"))
        let second = try await engine.submit(envelope: try envelope("api", "a1", api, "/api.tar.gz"))
        async let a = engine.wait(for: first.id)
        async let b = engine.wait(for: second.id)
        let records = [try #require(await a), try #require(await b)]
        for record in records { #expect(record.phase == .succeeded, "\(Self.messages(record))") }
        let waited = records.filter { Self.messages($0).contains("waiting for a fetch slot (1 at a time)") }
        #expect(waited.count == 1, "\(records.map(Self.messages))")
        // nginx's own clock: each request's start (end minus duration) and end.
        let spans = try setup.nginx.accessLog.map { line -> (Double, Double) in
            let times = try #require(line.firstMatch(of: #/ ([0-9.]+) ([0-9.]+)$/#), "\(line)")
            let end = try #require(Double(times.1)), took = try #require(Double(times.2))
            return (end - took, end)
        }.sorted { $0.0 < $1.0 }
        #expect(spans.count == 2)
        if spans.count == 2 { #expect(spans[1].0 >= spans[0].1 - 0.002, "overlapping transfers: \(spans)") }
    }

    @Test("a redirect on the same server is followed")
    func redirect() async throws {
        let setup = try Setup(serverDirectives: "location = /latest.tar.gz { return 302 /builds/web-v1.tar.gz; }")
        defer { setup.remove() }
        let v1 = try setup.fixture.artifact("v1")
        try setup.nginx.serve(v1.path, at: "/builds/web-v1.tar.gz")
        let record = try await setup.fixture.engine().deploy(
            try setup.fixture.envelope("v1", artifact: v1, url: setup.nginx.url("/latest.tar.gz")), artifact: nil)
        #expect(record.phase == .succeeded, "\(Self.messages(record))")
        #expect(setup.nginx.accessLog.map { String($0.prefix(3)) } == ["302", "200"])
    }
}

/// What an answer means, decided from its head alone.
@Suite("Fetch responses")
struct FetchResponseTests {
    let url = try! ArtifactURL(parsing: "https://artifacts.example:8443/web/v2.tar.gz?sig=abc")

    func judge(_ head: FetchResponseHead, offset: UInt64 = 0, size: UInt64 = 1000, allowHTTP: Bool = false, redirects: Int = 0) -> FetchVerdict {
        FetchResponse.judge(head, offset: offset, size: size, url: url, allowHTTP: allowHTTP, redirects: redirects)
    }

    @Test("200 and 206: the body, from where the server says it starts; anything else about the range starts over")
    func ranges() {
        #expect(judge(FetchResponseHead(status: 200, contentLength: 1000)) == .body(from: 0))
        #expect(judge(FetchResponseHead(status: 200, contentLength: 1000), offset: 400) == .body(from: 0))
        #expect(judge(FetchResponseHead(status: 206, contentRange: "bytes 400-999/1000"), offset: 400) == .body(from: 400))
        #expect(judge(FetchResponseHead(status: 206, contentRange: "bytes 400-999/*"), offset: 400) == .body(from: 400))
        guard case .restart = judge(FetchResponseHead(status: 206, contentRange: "bytes 0-999/1000"), offset: 400) else {
            Issue.record("a range other than the one asked for")
            return
        }
        guard case .restart = judge(FetchResponseHead(status: 206), offset: 400) else {
            Issue.record("no Content-Range")
            return
        }
        guard case .restart = judge(FetchResponseHead(status: 416), offset: 400) else {
            Issue.record("416")
            return
        }
        guard case .fail(let error) = judge(FetchResponseHead(status: 206, contentRange: "bytes 400-999/2000"), offset: 400) else {
            Issue.record("another size")
            return
        }
        #expect(error.code == .sizeMismatch)
        guard case .fail(let other) = judge(FetchResponseHead(status: 200, contentLength: 1001)) else {
            Issue.record("another Content-Length")
            return
        }
        #expect(other.code == .sizeMismatch)
    }

    @Test("statuses: transient ones retried, others fail with the status and the server, never the path")
    func statuses() {
        for status in [408, 429, 500, 502, 503, 504] {
            guard case .retry = judge(FetchResponseHead(status: status)) else {
                Issue.record("\(status) is transient")
                continue
            }
        }
        for status in [400, 401, 403, 404, 410] {
            guard case .fail(let error) = judge(FetchResponseHead(status: status, reason: "Nope")) else {
                Issue.record("\(status) is final")
                continue
            }
            #expect(error.code == .artifactFetchFailed)
            #expect(error.message.contains("https://artifacts.example:8443 answered \(status) Nope"))
            #expect(!error.message.contains("sig=abc") && !error.message.contains("/web/"))
        }
    }

    @Test("redirects: followed to https, or to http only when allowed, and not forever")
    func redirects() throws {
        #expect(judge(FetchResponseHead(status: 302, location: "/other/v2.tar.gz")) == .redirect(try ArtifactURL(parsing: "https://artifacts.example:8443/other/v2.tar.gz")))
        #expect(judge(FetchResponseHead(status: 301, location: "https://cdn.example/x")) == .redirect(try ArtifactURL(parsing: "https://cdn.example/x")))
        guard case .fail = judge(FetchResponseHead(status: 302, location: "http://cdn.example/x")) else {
            Issue.record("a downgrade to http")
            return
        }
        #expect(judge(FetchResponseHead(status: 302, location: "http://cdn.example/x"), allowHTTP: true) == .redirect(try ArtifactURL(parsing: "http://cdn.example/x")))
        guard case .fail = judge(FetchResponseHead(status: 302, location: "/again"), redirects: FetchResponse.maxRedirects) else {
            Issue.record("a redirect loop")
            return
        }
        guard case .fail = judge(FetchResponseHead(status: 302)) else {
            Issue.record("no Location")
            return
        }
    }

    @Test("Content-Range and URLs parse only in their narrow forms")
    func parsing() throws {
        #expect(ContentRange(parsing: "bytes 0-9/10") == ContentRange(first: 0, last: 9, complete: 10))
        for bad in ["bytes 5-4/10", "bytes 0-10/10", "items 0-1/2", "bytes 0-1", "bytes -1/10", "bytes 0-1/x"] {
            #expect(ContentRange(parsing: bad) == nil, "\(bad)")
        }
        let v6 = try ArtifactURL(parsing: "https://[::1]:9000/a")
        #expect(v6.host == "::1" && v6.port == 9000 && v6.hostIsAddress && v6.origin == "https://[::1]:9000")
        let named = try ArtifactURL(parsing: "http://Artifacts.Example/a?b")
        #expect(named.host == "artifacts.example" && named.port == 80 && !named.hostIsAddress && named.target == "/a?b")
        #expect(try ArtifactURL(parsing: "https://10.0.0.1/x").hostIsAddress)
        for bad in ["ftp://x/a", "https://user@x/a", "https://x:0/a", "https://x/a b", "https:///a", "https://x:1:2/a"] {
            #expect(throws: ArtifactURL.ParseError.self, "\(bad)") { try ArtifactURL(parsing: bad) }
        }
    }
}

/// `fetch:` in batond.yaml.
@Suite("Fetch settings")
struct FetchSettingsTests {
    let head = "hostId: web-1\nenvironment: staging\ntrust: trust.yaml\n"

    @Test("defaults, the example file, and every field read")
    func parse() throws {
        #expect(try AgentConfiguration.parse(yaml: head, file: "/etc/baton/batond.yaml").fetch == FetchSettings())
        let example = try AgentConfiguration.load(#filePath.components(separatedBy: "/Tests/")[0] + "/agent/batond.example.yaml")
        #expect(example.fetch == FetchSettings(), "the example names the defaults")
        let config = try AgentConfiguration.parse(
            yaml: head + """
                fetch:
                  trust: certs/artifacts-ca.pem
                  allowHTTP: true
                  maxConcurrent: 3
                  deadline: 10m
                  idleTimeout: 5s
                  attempts: 7
                  retryDelay: 250ms
                  progressInterval: 2s
                """, file: "/etc/baton/batond.yaml")
        var expected = FetchSettings()
        expected.trust = .file("/etc/baton/certs/artifacts-ca.pem")
        expected.allowHTTP = true
        expected.maxConcurrent = 3
        expected.deadline = .minutes(10)
        expected.idleTimeout = .seconds(5)
        expected.attempts = 7
        expected.retryDelay = BatonDuration(milliseconds: 250)
        expected.progressInterval = .seconds(2)
        #expect(config.fetch == expected)
        #expect(try AgentConfiguration.parse(yaml: head + "fetch: {trust: system}\n", file: "b.yaml").fetch.trust == .system)
    }

    @Test("mistakes name the field", arguments: [
        ("fetch: {allowHttp: true}\n", "unknown_field"),
        ("fetch: {maxConcurrent: 0}\n", "invalid_value"),
        ("fetch: {deadline: 0s}\n", "invalid_value"),
        ("fetch: {attempts: many}\n", "invalid_value"),
        ("fetch: {trust: \"\"}\n", "invalid_value"),
    ])
    func mistakes(yaml: String, code: String) {
        do {
            _ = try AgentConfiguration.parse(yaml: head + yaml, file: "batond.yaml")
            Issue.record("accepted: \(yaml)")
        } catch {
            #expect(error.code.rawValue == code, "\(error)")
            #expect(error.line == 4, "\(error)")
        }
    }
}

/// `batond apply` without `--artifact`: the agent fetches `artifact.url` itself.
@Suite("batond apply fetches")
struct ApplyFetchTests {
    @Test("without --artifact, apply fetches the URL; with neither a URL nor a cached copy it refuses before using the serial")
    func applyFetches() async throws {
        let setup = try ArtifactFetchTests.Setup()
        defer { setup.remove() }
        let v1 = try setup.fixture.artifact("v1")
        try setup.nginx.serve(v1.path, at: "/web-v1.tar.gz")
        let fetched = try setup.fixture.envelope("v1", artifact: v1, url: setup.nginx.url("/web-v1.tar.gz"))
        let config = setup.fixture.configPath
        let result = try await offThePool {
            try ProcessRunner.run(ProcessRunner.executable("batond"), ["apply", "--config", config, "--envelope", fetched.path])
        }
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        #expect(result.stdout.contains("fetched and verified"), "\(result.stdout)")
        #expect(setup.fixture.current() == "v1")

        let v2 = try setup.fixture.artifact("v2")
        let noURL = try setup.fixture.envelope("v2", artifact: v2)
        let refused = try await offThePool {
            try ProcessRunner.run(ProcessRunner.executable("batond"), ["apply", "--config", config, "--envelope", noURL.path])
        }
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("artifact_unavailable") && refused.stderr.contains("pass --artifact FILE"), "\(refused.stderr)")
        // The serial is still unused: the same envelope deploys with the file.
        let again = try await offThePool {
            try ProcessRunner.run(ProcessRunner.executable("batond"), ["apply", "--config", config, "--envelope", noURL.path, "--artifact", v2.path])
        }
        #expect(again.status == 0, "\(again.stdout)\n\(again.stderr)")
        #expect(setup.fixture.current() == "v2")
    }
}
