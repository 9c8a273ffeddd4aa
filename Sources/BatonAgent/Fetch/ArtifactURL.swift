/// The parts of an artifact's `http://` or `https://` URL a fetch needs. Parsed by hand,
/// one narrow form only: `scheme://host[:port][/path][?query]`, the host a name, an IPv4
/// address or a bracketed IPv6 literal; no user info. The path and query are never
/// written into events, logs or errors (a signed URL often carries a token there):
/// ``origin`` names the server instead.
struct ArtifactURL: Sendable, Equatable {
    var isHTTPS: Bool
    /// The host to connect to, without brackets.
    var host: String
    var port: Int
    /// Path and query, as sent in the request line (at least `/`).
    var target: String

    struct ParseError: Error, CustomStringConvertible {
        let description: String
    }

    /// `https://host:port`: what events and errors name.
    var origin: String { "\(isHTTPS ? "https" : "http")://\(hostHeader(alwaysWithPort: true))" }

    /// The `Host` header value: the host as written (brackets included), with the port
    /// when it is not the scheme's default.
    var hostHeader: String { hostHeader(alwaysWithPort: false) }

    private func hostHeader(alwaysWithPort: Bool) -> String {
        let name = host.contains(":") ? "[\(host)]" : host
        return !alwaysWithPort && port == (isHTTPS ? 443 : 80) ? name : "\(name):\(port)"
    }

    /// Whether the host is an IP address literal: TLS sends no SNI for one and checks the
    /// certificate against the address connected to.
    var hostIsAddress: Bool {
        host.contains(":") || (host.split(separator: ".").count == 4 && host.allSatisfy { $0.isASCII && ($0.isNumber || $0 == ".") })
    }

    init(parsing text: String) throws(ParseError) {
        let lower = text.lowercased()
        let schemeLength: Int
        if lower.hasPrefix("https://") {
            isHTTPS = true
            schemeLength = 8
        } else if lower.hasPrefix("http://") {
            isHTTPS = false
            schemeLength = 7
        } else {
            throw ParseError(description: "only http:// and https:// URLs can be fetched")
        }
        // Request line and header injection: no whitespace or control characters at all.
        guard !text.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value >= 0x7F }) else {
            throw ParseError(description: "the URL contains spaces, control or non-ASCII characters")
        }
        let parts: URLAuthority
        do { parts = try URLAuthority(parsing: text.dropFirst(schemeLength)) } catch { throw ParseError(description: error.description) }
        // Names compare case-insensitively (SNI, the certificate check); IPv6 literals as written.
        host = parts.host.contains(":") ? parts.host : parts.host.lowercased()
        port = parts.port ?? (isHTTPS ? 443 : 80)
        target = parts.target
    }

    /// Where a redirect's `Location` points: an absolute URL, or a path on this server
    /// (`/other/path`, or `//host/path` on this scheme).
    func resolving(_ location: String) throws(ParseError) -> ArtifactURL {
        let lower = location.lowercased()
        if lower.hasPrefix("https://") || lower.hasPrefix("http://") { return try ArtifactURL(parsing: location) }
        if location.hasPrefix("//") { return try ArtifactURL(parsing: (isHTTPS ? "https:" : "http:") + location) }
        guard location.hasPrefix("/") else {
            throw ParseError(description: "a redirect to a relative location is not followed")
        }
        var next = try ArtifactURL(parsing: origin + location)
        next.port = port
        return next
    }
}
