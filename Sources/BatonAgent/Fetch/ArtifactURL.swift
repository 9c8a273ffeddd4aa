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
        var rest = Substring(text.dropFirst(schemeLength))
        if let fragment = rest.firstIndex(of: "#") { rest = rest[..<fragment] }
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        let pathAndQuery = rest[authorityEnd...]
        guard !authority.contains("@") else { throw ParseError(description: "user info in the URL is not supported") }

        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw ParseError(description: "unterminated IPv6 literal") }
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw ParseError(description: "unexpected text after the IPv6 literal") }
                portText = after.dropFirst()
            }
            guard host.contains(":"), host.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else {
                throw ParseError(description: "'\(host)' is not an IPv6 address")
            }
        } else {
            let parts = authority.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count <= 2 else { throw ParseError(description: "an IPv6 host must be written in brackets") }
            host = String(parts[0]).lowercased()
            if parts.count == 2 { portText = parts[1] }
        }
        guard !host.isEmpty else { throw ParseError(description: "the URL has no host") }
        if let portText {
            guard !portText.isEmpty, portText.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(portText), (1...65535).contains(value) else {
                throw ParseError(description: "'\(portText)' is not a port")
            }
            port = value
        } else {
            port = isHTTPS ? 443 : 80
        }
        target = pathAndQuery.hasPrefix("/") ? String(pathAndQuery) : "/" + pathAndQuery
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
