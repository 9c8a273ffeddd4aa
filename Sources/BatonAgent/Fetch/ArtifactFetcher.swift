import NIOCore

/// Fetches an artifact from its URL into an ``ArtifactWriter``, which hashes every byte
/// and refuses the first one past the manifest's size. A cut connection is resumed with
/// `Range: bytes=<held>-` (and `If-Range`, so a file replaced on the server is sent whole
/// instead of spliced); an answer that does not continue exactly where the held bytes end
/// starts over from byte 0. Transient failures are retried with a doubling backoff, up
/// to `fetch.attempts` in a row without a new byte; everything stops at `fetch.deadline`.
/// The writer is left holding all the bytes: the caller checks the digest and makes the
/// file visible (``ArtifactWriter/finish()``), or drops it.
struct ArtifactFetcher: Sendable {
    let settings: FetchSettings
    let get: HTTPGet
    /// The longest backoff between two attempts.
    static let maxRetryDelay = Duration.seconds(30)

    /// What a fetch reports while it runs, for the deployment's events.
    enum Report: Sendable, Equatable {
        /// Bytes held so far, at most once per `fetch.progressInterval`.
        case progress(received: UInt64, size: UInt64, bytesPerSecond: UInt64)
        /// An attempt ended without the whole artifact; the next starts after `delay`.
        case retrying(reason: String, received: UInt64, delay: Duration, failuresInARow: Int)
        /// The bytes held were dropped; the next attempt asks for the whole artifact.
        case restarting(reason: String)
        case redirected(to: String)
    }

    /// How the fetch went, for the closing event.
    struct Summary: Sendable, Equatable {
        var attempts: Int
        var resumed: Int
        var restarted: Int
        var origin: String
    }

    func fetch(
        _ start: ArtifactURL, size: UInt64, into writer: ArtifactWriter, report: @Sendable (Report) async -> Void
    ) async throws(AgentError) -> Summary {
        let began = NIODeadline.now()
        let deadline = began + TimeAmount(settings.deadline.swiftDuration)
        let idle = TimeAmount(settings.idleTimeout.swiftDuration)
        let interval = TimeAmount(settings.progressInterval.swiftDuration)
        var summary = Summary(attempts: 0, resumed: 0, restarted: 0, origin: start.origin)
        var url = start
        var redirects = 0
        var failures = 0
        var delay = settings.retryDelay.swiftDuration
        // What identifies the version of the file whose bytes are held: sent as If-Range.
        var validator: String?
        var lastReport = began
        var reportedBytes: UInt64 = 0

        while true {
            if Task.isCancelled {
                throw AgentError(.artifactFetchFailed, "the fetch was cancelled (the agent is stopping); nothing was kept")
            }
            let offset = writer.written
            var headers: [(String, String)] = []
            if offset > 0 {
                headers.append(("Range", "bytes=\(offset)-"))
                if let validator { headers.append(("If-Range", validator)) }
                if redirects == 0 { summary.resumed += 1 }
            }
            if redirects == 0 { summary.attempts += 1 }
            var verdict: FetchVerdict?
            var gained: UInt64 = 0
            let current = url, redirectsSoFar = redirects
            let end = try await get.exchange(
                current, headers: headers, idleTimeout: idle, deadline: deadline,
                onHead: { head throws(AgentError) in
                    let judged = FetchResponse.judge(
                        head, offset: offset, size: size, url: current, allowHTTP: settings.allowHTTP, redirects: redirectsSoFar)
                    verdict = judged
                    guard case .body(let from) = judged else { return false }
                    if from == 0, writer.written > 0 {
                        try writer.restart()
                        summary.restarted += 1
                    }
                    validator = Self.validator(head)
                    return true
                },
                onBody: { buffer throws(AgentError) in
                    try Self.write(buffer, to: writer)
                    gained += UInt64(buffer.readableBytes)
                    let now = NIODeadline.now()
                    if now - lastReport >= interval {
                        let seconds = max(Double((now - lastReport).nanoseconds) / 1e9, 0.001)
                        let rate = UInt64(Double(writer.written &- min(reportedBytes, writer.written)) / seconds)
                        lastReport = now
                        reportedBytes = writer.written
                        await report(.progress(received: writer.written, size: size, bytesPerSecond: rate))
                    }
                })
            let held = writer.written
            let progressed = gained > 0

            // What the attempt came to: done, a next step without waiting, or a failure to retry.
            var failure: String
            switch (verdict, end) {
            case (_, .deadline):
                throw deadlineError(url: start, held: held, size: size)
            case (_, .tlsRefused(let reason)):
                throw AgentError(
                    .artifactFetchFailed,
                    "\(current.origin) was refused by TLS: \(reason) (fetch.trust: \(Self.describe(settings.trust))); nothing was kept")
            case (.fail(let error)?, _):
                throw error
            case (.redirect(let next)?, _):
                url = next
                redirects += 1
                await report(.redirected(to: next.origin))
                continue
            case (.restart(let reason)?, _):
                try writer.restart()
                summary.restarted += 1
                validator = nil
                await report(.restarting(reason: reason))
                failure = reason
            case (.retry(let reason)?, _):
                failure = reason
            case (.body(let from)?, .complete):
                if held == size { return summary }
                // A whole response (200) shorter than the manifest says: not the artifact.
                if from == 0 {
                    throw AgentError(
                        .sizeMismatch,
                        "\(current.origin) sent \(held) bytes, but the manifest names \(size); it is not the artifact that was signed, and nothing was kept")
                }
                failure = "\(current.origin) ended its range at byte \(held) of \(size)"
            case (_, .cut(let reason)):
                failure = reason
            case (_, .headOnly), (nil, .complete):
                failure = "\(current.origin) sent no answer"
            }

            // The next attempt starts from the artifact's own URL: a redirect's target may
            // be a signed URL that expires.
            url = start
            redirects = 0
            if progressed {
                failures = 0
                delay = settings.retryDelay.swiftDuration
            }
            failures += 1
            if failures >= settings.attempts {
                throw AgentError(
                    .artifactFetchFailed,
                    "fetching from \(start.origin) failed \(failures) time(s) in a row without a new byte (fetch.attempts); the last: \(failure); \(held) of \(size) bytes had arrived and nothing was kept")
            }
            let wait = delay
            if NIODeadline.now() + TimeAmount(wait) >= deadline {
                throw deadlineError(url: start, held: held, size: size, last: failure)
            }
            await report(.retrying(reason: failure, received: held, delay: wait, failuresInARow: failures))
            do {
                try await Task.sleep(for: wait)
            } catch {
                throw AgentError(.artifactFetchFailed, "the fetch was cancelled (the agent is stopping); nothing was kept")
            }
            delay = min(delay * 2, Self.maxRetryDelay)
        }
    }

    private func deadlineError(url: ArtifactURL, held: UInt64, size: UInt64, last: String? = nil) -> AgentError {
        AgentError(
            .artifactFetchDeadline,
            "fetching from \(url.origin) did not finish within \(settings.deadline) (fetch.deadline): \(held) of \(size) bytes had arrived\(last.map { "; the last attempt: \($0)" } ?? ""); nothing was kept")
    }

    static func write(_ buffer: ByteBuffer, to writer: ArtifactWriter) throws(AgentError) {
        do {
            try buffer.withUnsafeReadableBytes { try writer.write($0) }
        } catch let error as AgentError {
            throw error
        } catch {
            throw AgentError(.ioError, "write artifact: \(error)")
        }
    }

    /// A strong ETag, else Last-Modified: what `If-Range` may carry (RFC 9110 §13.1.5).
    static func validator(_ head: FetchResponseHead) -> String? {
        if let etag = head.etag, !etag.hasPrefix("W/") { return etag }
        return head.lastModified
    }

    static func describe(_ trust: FetchSettings.Trust) -> String {
        switch trust {
        case .fleet: "fleet, the fleet CA"
        case .system: "system, the system's root certificates"
        case .file(let path): path
        }
    }
}
