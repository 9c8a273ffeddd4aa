import BatonAgent
import BatonProtocol
import BatonTestSupport
import Crypto
import Foundation
import Testing

/// Nobody can exhaust a host through its API without a signature: uploads stay inside the
/// artifact cache when their bytes arrive, an upload that falls behind its pace is dropped
/// and its slot freed, and connections that never finish a TLS handshake cannot crowd out
/// a controller. Each test prints the figures it measured.
@Suite("batond run: uploads and handshakes cannot exhaust the host", .serialized)
struct DaemonExhaustionTests {
    /// Incompressible bytes under their digest: what a PUT checks is size and SHA-256.
    static func blob(_ host: DaemonHost, _ name: String, bytes: Int) throws -> AgentFixture.Artifact {
        let random = try #require(FileHandle(forReadingAtPath: "/dev/urandom"))
        defer { try? random.close() }
        let data = random.readData(ofLength: bytes)
        let path = host.dir.child("\(name).bin")
        try data.write(to: URL(fileURLWithPath: path))
        let digest = SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
        return AgentFixture.Artifact(path: path, sha256: digest, size: UInt64(bytes), files: [:])
    }

    static func cacheBytes(_ host: DaemonHost) -> UInt64 {
        let directory = host.fixture.layout.artifactsDirectory
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { Digest.isSHA256Hex($0) }.reduce(0) { total, name in
            let size = (try? FileManager.default.attributesOfItem(atPath: "\(directory)/\(name)")[.size] as? NSNumber)?.uint64Value
            return total + (size ?? 0)
        }
    }

    /// Five 1 MiB uploads into a 3 MiB cache: each is taken by evicting the least recently
    /// used artifact, and the cache never holds more than its capacity; an artifact larger
    /// than the whole cache is refused with 507 `cache_full` before a byte is kept.
    @Test(.timeLimit(.minutes(2)))
    func theCacheCapacityHoldsWhenBytesArrive() async throws {
        let host = try await DaemonHost.make(limits: "limits:\n  artifactCache: 3MiB")
        defer { host.remove() }
        let daemon = try await host.start()
        defer { daemon.stop() }
        let api = host.client(daemon)

        var largest: UInt64 = 0
        var blobs: [AgentFixture.Artifact] = []
        for i in 1...5 {
            let blob = try Self.blob(host, "a\(i)", bytes: 1 << 20)
            blobs.append(blob)
            let stored = try await api.upload(blob)
            #expect(stored.status == 201, "\(stored.body)")
            largest = max(largest, Self.cacheBytes(host))
        }
        #expect(largest <= 3 << 20, "the cache held \(largest) bytes")
        // Least recently used went first: the two oldest are gone, the three newest held.
        for (i, blob) in blobs.enumerated() {
            let held = try await api.call("HEAD", "/v1/artifacts/sha256/\(blob.sha256)").status
            #expect(held == (i < 2 ? 404 : 200), "artifact \(i + 1): \(held)")
        }

        let huge = try Self.blob(host, "huge", bytes: 4 << 20)
        let refused = try await api.upload(huge)
        #expect(refused.status == 507, "\(refused.body)")
        #expect(refused.errorCode == "cache_full")
        #expect(Self.cacheBytes(host) <= 3 << 20)
        print("upload capacity: 5 uploads of 1 MiB into a 3 MiB cache kept at most \(largest) bytes; a 4 MiB upload: \(refused.status) \(refused.errorCode ?? "-")")
    }

    /// A client trickling one byte every half second holds the only upload slot until the
    /// pace check drops it (about one window); then a real upload is taken at once.
    @Test(.timeLimit(.minutes(2)))
    func aTricklingUploadIsDroppedAndItsSlotFreed() async throws {
        let host = try await DaemonHost.make(
            limits: "limits:\n  maxConcurrentUploads: 1\n  minUploadRate: 64KiB\n  uploadRateWindow: 2s")
        defer { host.remove() }
        let daemon = try await host.start()
        defer { daemon.stop() }
        let api = host.client(daemon)
        let v1 = try await host.artifact("v1")
        let trickled = try Self.blob(host, "trickled", bytes: 1 << 20)

        let credential = host.pki.controller
        let python = """
            import socket, ssl, sys, time
            context = ssl.create_default_context(cafile="\(host.pki.caFile)")
            context.check_hostname = False
            context.load_cert_chain("\(credential.certificate)", "\(credential.key)")
            s = context.wrap_socket(socket.create_connection(("127.0.0.1", \(daemon.apiPort))))
            s.sendall(b"PUT /v1/artifacts/sha256/\(trickled.sha256) HTTP/1.1\\r\\nHost: agent\\r\\nContent-Length: \(trickled.size)\\r\\n\\r\\n")
            print("sending", flush=True)
            try:
                while True:
                    s.sendall(b"x"); time.sleep(0.5)
            except OSError as error:
                print("closed by the agent:", error, flush=True)
            """
        let trickle = try BackgroundCommand("/usr/bin/env", ["python3", "-c", python], currentDirectory: host.dir.path)
        _ = try await trickle.waitForLine(containing: "sending", timeout: 30)
        defer { trickle.process.terminate() }
        let started = ContinuousClock.now
        // While the trickle holds the slot, another upload is busy.
        try await Task.sleep(for: .milliseconds(700))
        let busy = try await api.upload(v1)
        #expect(busy.status == 503, "\(busy.body)")
        try await daemon.waitForOccurrences(1, of: "msg=\"artifact upload dropped: too slow\"", timeout: 30)
        let dropped = ContinuousClock.now - started
        let stored = try await api.upload(v1)
        #expect(stored.status == 201, "\(stored.body)")
        #expect(dropped < .seconds(6))
        #expect((try? FileManager.default.contentsOfDirectory(atPath: host.fixture.layout.root + "/artifacts/tmp"))?.isEmpty ?? true)
        print("upload pace: a 1-byte-per-0.5s upload (minimum 64 KiB/s over 2s windows) was dropped after \(dropped); the next upload got \(stored.status)")
    }

    /// One address opens 100 connections and never starts a TLS handshake. A controller on
    /// another address is served at once: the silent address holds at most 8 handshake
    /// places, each for at most the handshake timeout.
    @Test(.timeLimit(.minutes(2)))
    func silentHandshakesDoNotCrowdOutTheController() async throws {
        let host = try await DaemonHost.make()
        defer { host.remove() }
        // The default handshake timeout (10 s): the controller must not wait for it.
        let daemon = try await host.start()
        defer { daemon.stop() }
        let api = host.client(daemon)
        let baseline = try await Self.timed { try await api.call("GET", "/v1/health", extra: ["--max-time", "5"]) }

        let python = """
            import socket, sys, time
            held = []
            for _ in range(100):
                s = socket.socket(); s.bind(("127.0.0.2", 0)); s.connect(("127.0.0.1", \(daemon.apiPort))); held.append(s)
            print("open", flush=True)
            time.sleep(60)
            """
        let silent = try BackgroundCommand("/usr/bin/env", ["python3", "-c", python], currentDirectory: host.dir.path)
        defer { silent.process.terminate() }
        _ = try await silent.waitForLine(containing: "open", timeout: 30)
        let crowded = try await Self.timed { try await api.call("GET", "/v1/health", extra: ["--max-time", "5"]) }
        #expect(crowded.answer.status == 200, "\(crowded.answer.curlError)")
        #expect(crowded.elapsed < .seconds(3))
        print("handshakes: /v1/health took \(baseline.elapsed) alone and \(crowded.elapsed) beside 100 silent connections from another address")
    }

    static func timed(_ call: () async throws -> APIClient.Answer) async throws -> (answer: APIClient.Answer, elapsed: Duration) {
        let started = ContinuousClock.now
        let answer = try await call()
        return (answer, ContinuousClock.now - started)
    }
}
