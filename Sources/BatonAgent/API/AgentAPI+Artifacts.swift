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
import Hummingbird
import Logging
import NIOCore

extension AgentAPI {
    func headArtifact(_ context: AgentRequestContext) async throws -> Response {
        let digest = try Self.digest(context)
        guard engine.hasArtifact(digest) else {
            throw RequestError(.notFound, "artifact sha256:\(digest) is not on this host")
        }
        // The size, as Content-Length (PROTOCOL §10.2); a HEAD answer has no body.
        var headers: HTTPFields = [:]
        var info = stat()
        if stat(engine.layout.artifact(digest), &info) == 0 { headers[.contentLength] = "\(info.st_size)" }
        return Response(status: .ok, headers: headers, body: ResponseBody())
    }

    /// Streams the body into the artifact cache while hashing it: each ByteBuffer is
    /// written as it arrives, never collected. The size is `Content-Length` (required),
    /// capped by the agent's `maxArtifactSize`; the artifact is kept only if its SHA-256
    /// matches the digest in the path (422 `digest_mismatch` otherwise, and nothing is
    /// kept). A client that goes away mid-upload leaves nothing behind.
    func putArtifact(_ request: Request, _ context: AgentRequestContext) async throws -> Response {
        let digest = try Self.digest(context)
        guard let lengthText = request.headers[.contentLength], let length = UInt64(lengthText) else {
            throw RequestError(
                .lengthRequired,
                "an artifact upload needs a Content-Length header giving its exact size")
        }
        if engine.hasArtifact(digest) {
            return try APIResponse.json(ArtifactReceipt(sha256: digest, size: length, existing: true))
        }
        let upload = try await engine.beginUpload(digest: digest, size: length)
        let pace = UploadPace(
            size: length, minimumBytesPerSecond: engine.configuration.limits.minUploadBytesPerSecond,
            window: engine.configuration.limits.uploadRateWindow.swiftDuration)
        // The watchdog closes the connection of an upload that falls behind its pace: the
        // body stops arriving, the upload is dropped below, and its slot is free again.
        let channel = context.channel
        let watchdog = Task {
            while let verdict = await pace.nextVerdict() {
                if case .tooSlow = verdict {
                    channel.close(promise: nil)
                    return
                }
            }
        }
        defer { watchdog.cancel() }
        var received: UInt64 = 0
        do {
            for try await chunk in request.body {
                received += UInt64(chunk.readableBytes)
                pace.received(received)
                try chunk.withUnsafeReadableBytes { try upload.write($0) }
                metrics?.artifactBytesReceived(chunk.readableBytes)
            }
        } catch let error as RequestError {
            // Over the declared size, or the disk: the upload already ended itself.
            upload.abort()
            throw error
        } catch {
            upload.abort()
            if let reason = pace.dropped { throw tooSlow(digest, received: received, size: length, context: context, reason: reason) }
            // The connection broke while the body was arriving.
            throw cutShort(digest, received: received, size: length, context: context, reason: "\(error)")
        }
        guard received == length else {
            upload.abort()
            if let reason = pace.dropped { throw tooSlow(digest, received: received, size: length, context: context, reason: reason) }
            throw cutShort(digest, received: received, size: length, context: context, reason: "the body ended early")
        }
        // The digest check and the rename into the cache: off the cooperative pool.
        try await Blocking.run { try upload.finish() }
        context.logger.info("artifact stored", metadata: ["baton.artifact": "\(digest)", "baton.size": "\(length)"])
        return try APIResponse.json(ArtifactReceipt(sha256: digest, size: length, existing: false), status: .created)
    }

    /// The client went away mid-upload: nothing is kept, and the slot is free again.
    private func cutShort(
        _ digest: String, received: UInt64, size: UInt64, context: AgentRequestContext, reason: String
    ) -> RequestError {
        uploadEnded(
            "artifact upload cut short", digest, received: received, size: size, context: context, reason: reason,
            RequestError(.uploadIncomplete, "the upload ended after \(received) of \(size) bytes; nothing was kept"))
    }

    /// The upload fell behind its pace and its connection was closed: nothing is kept.
    private func tooSlow(
        _ digest: String, received: UInt64, size: UInt64, context: AgentRequestContext, reason: String
    ) -> RequestError {
        metrics?.refused(code: AgentError.Code.uploadTooSlow.rawValue)
        return uploadEnded(
            "artifact upload dropped: too slow", digest, received: received, size: size, context: context, reason: reason,
            RequestError(
                .uploadTooSlow,
                "the upload was dropped after \(received) of \(size) bytes: \(reason); nothing was kept"))
    }

    /// Logs an upload that ended without an artifact, and returns `error` for the answer.
    private func uploadEnded(
        _ message: Logger.Message, _ digest: String, received: UInt64, size: UInt64, context: AgentRequestContext,
        reason: String, _ error: RequestError
    ) -> RequestError {
        context.logger.notice(
            message,
            metadata: [
                "baton.artifact": "\(digest)", "baton.received": "\(received)", "baton.size": "\(size)",
                "baton.reason": "\(reason)",
            ])
        return error
    }

    static func digest(_ context: AgentRequestContext) throws -> String {
        let digest = try context.parameters.require("digest")
        // PROTOCOL §10: a path parameter that is not a digest names nothing.
        guard Digest.isSHA256Hex(digest) else {
            throw RequestError(
                .notFound, "'\(digest)' is not a lowercase hex SHA-256 digest, so no artifact")
        }
        return digest
    }
}
