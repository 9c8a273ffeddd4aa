/// What follows the scheme of the one narrow URL form the agent accepts, for health checks
/// (``HealthURL``) and artifact fetches (``ArtifactURL``): `host[:port][/path][?query]`,
/// the host a name, an IPv4 address or a bracketed IPv6 literal, no user info; a fragment
/// is dropped. Parsed by hand so nothing wider slips through.
struct URLAuthority {
    /// As written, without brackets.
    var host: String
    /// Nil when the URL gives none (the scheme's default applies).
    var port: Int?
    /// Path and query, as sent in the request line (at least `/`).
    var target: String

    struct ParseError: Error {
        let description: String
    }

    init(parsing afterScheme: Substring) throws(ParseError) {
        var rest = afterScheme
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
            host = String(parts[0])
            if parts.count == 2 { portText = parts[1] }
        }
        guard !host.isEmpty else { throw ParseError(description: "the URL has no host") }
        if let portText {
            guard !portText.isEmpty, portText.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(portText), (1...65535).contains(value) else {
                throw ParseError(description: "'\(portText)' is not a port")
            }
            port = value
        }
        target = pathAndQuery.hasPrefix("/") ? String(pathAndQuery) : "/" + pathAndQuery
    }
}
