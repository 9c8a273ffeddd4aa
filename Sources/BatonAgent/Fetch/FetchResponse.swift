/// What one HTTP answer means for a fetch, decided from the status and headers alone
/// (no I/O, so every case is tested without a server): read its body, follow a
/// redirect, try again later, start over from byte 0, or give up.
enum FetchVerdict: Sendable, Equatable {
    /// Read the body; its first byte is byte `from` of the artifact. 0 after bytes were
    /// already held means the server sent the whole artifact again (it ignored `Range`).
    case body(from: UInt64)
    case redirect(ArtifactURL)
    /// A transient refusal (408, 429, 5xx): retry after the backoff.
    case retry(String)
    /// The server cannot serve the range asked for (416, or a `Content-Range` that is not
    /// the one asked): drop what was received and ask for the whole artifact.
    case restart(String)
    case fail(AgentError)
}

/// The headers of an answer that a fetch reads.
struct FetchResponseHead: Sendable, Equatable {
    var status: Int
    var reason: String = ""
    var contentLength: UInt64?
    var contentRange: String?
    var contentType: String?
    var location: String?
    var etag: String?
    var lastModified: String?
}

enum FetchResponse {
    /// Redirects followed per attempt before giving up: enough for a CDN or a signed-URL
    /// hop, not a loop.
    static let maxRedirects = 5

    /// - Parameters:
    ///   - offset: the first byte asked for (`Range: bytes=offset-`); 0 when no range was sent.
    ///   - size: the manifest's size.
    ///   - redirects: redirects already followed in this attempt.
    static func judge(
        _ head: FetchResponseHead, offset: UInt64, size: UInt64, url: ArtifactURL, allowHTTP: Bool, redirects: Int
    ) -> FetchVerdict {
        let answer = "\(url.origin) answered \(head.status)\(head.reason.isEmpty ? "" : " \(head.reason)")"
        switch head.status {
        case 200:
            if let length = head.contentLength, length != size {
                return .fail(
                    AgentError(
                        .sizeMismatch,
                        "\(url.origin) serves \(length) bytes, but the manifest names \(size); it is not the artifact that was signed, and nothing was kept"))
            }
            return .body(from: 0)
        case 206:
            guard let text = head.contentRange, let range = ContentRange(parsing: text) else {
                return .restart("\(answer) without a usable Content-Range")
            }
            if let complete = range.complete, complete != size {
                return .fail(
                    AgentError(
                        .sizeMismatch,
                        "\(url.origin) serves \(complete) bytes, but the manifest names \(size); it is not the artifact that was signed, and nothing was kept"))
            }
            guard range.first == offset, range.last < size else {
                return .restart("\(answer) with bytes \(range.first)-\(range.last) when bytes from \(offset) were asked for")
            }
            return .body(from: offset)
        case 416:
            return .restart("\(answer) to the range from byte \(offset)")
        case 301, 302, 303, 307, 308:
            guard let location = head.location else {
                return .fail(AgentError(.artifactFetchFailed, "\(answer) without a Location to follow; nothing was kept"))
            }
            guard redirects < maxRedirects else {
                return .fail(AgentError(.artifactFetchFailed, "\(answer) after \(redirects) redirects already; not following more"))
            }
            let next: ArtifactURL
            do {
                next = try url.resolving(location)
            } catch {
                return .fail(AgentError(.artifactFetchFailed, "\(answer), redirecting to a URL that cannot be fetched: \(error.description)"))
            }
            if !next.isHTTPS, !allowHTTP {
                return .fail(
                    AgentError(
                        .artifactFetchFailed,
                        "\(answer), redirecting to plain HTTP (\(next.origin)), which this agent does not fetch from (fetch.allowHTTP)"))
            }
            return .redirect(next)
        case 408, 425, 429, 500...599:
            return .retry(answer)
        default:
            return .fail(AgentError(.artifactFetchFailed, "\(answer); nothing was kept"))
        }
    }
}

/// `Content-Range: bytes first-last/complete` (RFC 9110 §14.4), `complete` possibly `*`.
struct ContentRange: Sendable, Equatable {
    var first: UInt64
    var last: UInt64
    var complete: UInt64?
}

extension ContentRange {
    init?(parsing text: String) {
        let trimmed = text.trimmingWhitespace()
        guard trimmed.lowercased().hasPrefix("bytes ") else { return nil }
        let spec = trimmed.dropFirst(6).trimmingWhitespace()
        let halves = spec.split(separator: "/", omittingEmptySubsequences: false)
        guard halves.count == 2 else { return nil }
        let bounds = halves[0].split(separator: "-", omittingEmptySubsequences: false)
        guard bounds.count == 2, let first = Self.number(bounds[0]), let last = Self.number(bounds[1]), first <= last else {
            return nil
        }
        self.first = first
        self.last = last
        if halves[1] == "*" {
            complete = nil
        } else {
            guard let complete = Self.number(halves[1]), last < complete else { return nil }
            self.complete = complete
        }
    }

    private static func number(_ text: Substring) -> UInt64? {
        guard !text.isEmpty, text.count <= 19, text.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return UInt64(text)
    }
}

extension StringProtocol {
    fileprivate func trimmingWhitespace() -> Substring {
        let s = Substring(self)
        guard let start = s.firstIndex(where: { $0 != " " && $0 != "\t" }) else { return "" }
        let end = s.lastIndex(where: { $0 != " " && $0 != "\t" })!
        return s[start...end]
    }
}
