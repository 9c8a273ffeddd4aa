import BatonProtocol
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
