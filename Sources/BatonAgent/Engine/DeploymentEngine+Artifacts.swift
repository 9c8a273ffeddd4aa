import BatonProtocol
import NIOPosix
import NIOSSL
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An artifact being uploaded to the agent (`PUT /v1/artifacts/sha256/{digest}`): bytes
/// are hashed and written as they arrive, the declared size is enforced on every chunk,
/// and the file becomes visible under its digest only after `finish()` checked it.
/// Used by one request at a time.
public final class ArtifactUpload: @unchecked Sendable {
    private var writer: ArtifactWriter?
    private let release: @Sendable () -> Void
    public let digest: String
    public let declaredSize: UInt64

    init(writer: ArtifactWriter, digest: String, size: UInt64, release: @escaping @Sendable () -> Void) {
        self.writer = writer
        self.digest = digest
        declaredSize = size
        self.release = release
    }

    /// Appends bytes; more than declared ends the upload at once with `size_mismatch`.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(RequestError) {
        guard writer != nil else { throw RequestError(.uploadClosed, "the upload already ended") }
        do {
            try writer!.write(bytes)
        } catch {
            finishOnce()
            throw RequestError(code: error.reportedCode, message: error.message)
        }
    }

    /// Verifies size and digest and keeps the artifact; on a mismatch nothing is kept (422).
    public func finish() throws(RequestError) {
        guard writer != nil else { throw RequestError(.uploadClosed, "the upload already ended") }
        defer { finishOnce() }
        do {
            try writer!.finish()
        } catch {
            throw RequestError(code: error.reportedCode, message: error.message)
        }
    }

    /// Drops what was received (a client that went away).
    public func abort() {
        writer?.abort()
        finishOnce()
    }

    private func finishOnce() {
        if writer != nil {
            writer = nil
            release()
        }
    }

    deinit { abort() }
}

extension DeploymentEngine {
    public nonisolated func hasArtifact(_ digest: String) -> Bool { cache.contains(digest) }

    /// Starts an upload. Refuses a bad digest (400), a size over the configured maximum
    /// (413), more concurrent uploads than configured (503 `agent_busy`), and an artifact
    /// the cache cannot hold even after evicting what no deployment needs (507
    /// `cache_full`): the capacity holds when bytes arrive, not only when a deployment
    /// settles, so uploads alone cannot fill the disk.
    public func beginUpload(digest: String, size: UInt64) throws(RequestError) -> ArtifactUpload {
        guard Digest.isSHA256Hex(digest) else {
            throw RequestError(code: VerificationCode.malformed.rawValue, message: "'\(digest)' is not a lowercase hex SHA-256 digest")
        }
        guard size > 0, size <= configuration.limits.maxArtifactBytes else {
            throw RequestError(
                code: AgentError.Code.artifactTooLarge.rawValue,
                message: "\(size) bytes is over this agent's maximum artifact size of \(configuration.limits.maxArtifactBytes) bytes")
        }
        let limit = configuration.limits.maxConcurrentUploads
        guard let token = uploads.reserve(digest: digest, size: size, limit: limit) else {
            throw RequestError(
                code: AgentError.Code.agentBusy.rawValue,
                message: "\(limit) uploads are already in progress; retry shortly")
        }
        let others = uploads.others(than: token)
        // What a deployment in flight still needs, and what is arriving, is never evicted.
        let needed = Set(contexts.values.compactMap { $0.manifest?.artifact.sha256 }).union(others.digests)
        guard cache.makeRoom(for: size, reserved: others.bytes, protecting: needed) else {
            uploads.release(token)
            throw RequestError(
                code: AgentError.Code.cacheFull.rawValue,
                message: "\(size) bytes do not fit this agent's artifact cache of \(cache.capacity) bytes beside what deployments and uploads in progress need; retry when they finish, or raise limits.artifactCache")
        }
        let writer: ArtifactWriter
        do {
            writer = try cache.beginWrite(digest: digest, size: size)
        } catch {
            uploads.release(token)
            throw RequestError(code: error.reportedCode, message: error.message)
        }
        let uploads = self.uploads
        return ArtifactUpload(writer: writer, digest: digest, size: size) { uploads.release(token) }
    }
}

extension DeploymentEngine {
    /// Fetches the artifact from the manifest's `artifact.url` into the cache, when it was
    /// neither uploaded nor given as a file. The same guards as an upload: the agent's size
    /// limit first, room in the cache held for it while it arrives, every byte hashed, the
    /// size enforced on every chunk, and nothing visible under the digest until the digest
    /// matched. Waits for a fetch slot (`fetch.maxConcurrent`); reports progress in the
    /// deployment's events.
    func fetchFromURL(_ id: String, artifact: ArtifactReference, url text: String) async throws(AgentError) {
        let settings = configuration.fetch
        guard artifact.size <= configuration.limits.maxArtifactBytes else {
            throw AgentError(
                .artifactTooLarge,
                "the manifest's artifact is \(artifact.size) bytes, over this agent's maximum artifact size of \(configuration.limits.maxArtifactBytes) bytes (limits.maxArtifactSize); nothing was fetched")
        }
        let url: ArtifactURL
        do {
            url = try ArtifactURL(parsing: text)
        } catch {
            throw AgentError(.artifactFetchFailed, "artifact.url cannot be fetched: \(error.description)")
        }
        guard url.isHTTPS || settings.allowHTTP else {
            throw AgentError(
                .artifactFetchFailed,
                "artifact.url is plain HTTP (\(url.origin)) and this agent fetches over HTTPS only; upload the artifact, or set fetch.allowHTTP: true in batond.yaml (the manifest's digest is checked either way)")
        }
        // Built even for http://, when it can be: a redirect may lead to https.
        let tls: NIOSSLContext?
        do {
            tls = try FetchTLS.context(settings.trust, fleetCA: configuration.tls?.ca)
        } catch {
            if url.isHTTPS { throw error }
            tls = nil
        }
        if !(await fetchSlots.tryAcquire()) {
            await note(id, "waiting for a fetch slot (\(fetchSlots.count) at a time)")
            await fetchSlots.acquire()
        }
        do {
            try await fetchHoldingSlot(id, artifact: artifact, url: url, tls: tls)
        } catch {
            await fetchSlots.release()
            throw error
        }
        await fetchSlots.release()
    }

    private func fetchHoldingSlot(_ id: String, artifact: ArtifactReference, url: ArtifactURL, tls: NIOSSLContext?) async throws(AgentError) {
        // An upload of the same artifact may have landed while this deployment waited.
        if cache.contains(artifact.sha256) {
            cache.touch(artifact.sha256)
            await note(id, "artifact found in the cache")
            return
        }
        let token = uploads.reserveFetch(digest: artifact.sha256, size: artifact.size)
        defer { uploads.release(token) }
        let others = uploads.others(than: token)
        let needed = Set(contexts.values.compactMap { $0.manifest?.artifact.sha256 }).union(others.digests)
        guard cache.makeRoom(for: artifact.size, reserved: others.bytes, protecting: needed) else {
            throw AgentError(
                .cacheFull,
                "\(artifact.size) bytes do not fit this agent's artifact cache of \(cache.capacity) bytes beside what deployments and uploads in progress need; nothing was fetched")
        }
        let writer = try cache.beginWrite(digest: artifact.sha256, size: artifact.size)
        let started = ContinuousClock.now
        await note(id, "fetching \(ByteCount(artifact.size)) from \(url.origin)")
        let fetcher = ArtifactFetcher(settings: configuration.fetch, get: HTTPGet(group: MultiThreadedEventLoopGroup.singleton, tls: tls))
        let summary: ArtifactFetcher.Summary
        do {
            summary = try await fetcher.fetch(url, size: artifact.size, into: writer) { report in
                await self.note(id, Self.describe(report))
            }
        } catch {
            writer.abort()
            throw error
        }
        // The digest check, fsync and rename: off the cooperative pool.
        do {
            try await Blocking.run { try writer.finish() }
        } catch let error as AgentError {
            throw error
        } catch {
            throw AgentError(.ioError, "store artifact: \(error)")
        }
        let elapsed = ContinuousClock.now - started
        var how = ""
        if summary.resumed > 0 { how += ", resumed \(summary.resumed) time(s)" }
        if summary.restarted > 0 { how += ", restarted from byte 0 \(summary.restarted) time(s)" }
        await note(
            id,
            "fetched and verified \(ByteCount(artifact.size)) from \(summary.origin) in \(Self.seconds(elapsed)) (\(summary.attempts) attempt(s)\(how))")
    }

    static func describe(_ report: ArtifactFetcher.Report) -> String {
        switch report {
        case .progress(let received, let size, let rate):
            "fetched \(ByteCount(received)) of \(ByteCount(size)) (\(received * 100 / max(size, 1))%), \(ByteCount(rate))/s"
        case .retrying(let reason, let received, let delay, let failures):
            "fetch attempt failed (\(failures) in a row without a new byte): \(reason); retrying in \(seconds(delay)) from byte \(received)"
        case .restarting(let reason):
            "\(reason): dropped the bytes received and fetching from byte 0"
        case .redirected(let origin):
            "redirected to \(origin)"
        }
    }

    static func seconds(_ duration: Duration) -> String {
        let ms = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        return ms < 10_000 ? "\(Double(ms) / 1000)s" : "\(ms / 1000)s"
    }
}

/// Bytes as people read them in events: `512 bytes`, `3.4 KiB`, `1.2 MiB`, `2.0 GiB`.
struct ByteCount: CustomStringConvertible {
    let bytes: UInt64
    init(_ bytes: UInt64) { self.bytes = bytes }

    var description: String {
        if bytes < 1024 { return "\(bytes) bytes" }
        var value = Double(bytes) / 1024
        for unit in ["KiB", "MiB", "GiB"] {
            if value < 1024 || unit == "GiB" { return "\((value * 10).rounded() / 10) \(unit)" }
            value /= 1024
        }
        return "\(bytes) bytes"
    }
}
