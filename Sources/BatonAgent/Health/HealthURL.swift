/// The parts of an `http://` health check URL the probe needs. Parsed by hand because
/// only one narrow form is accepted: `http://host[:port][/path][?query]`, the host a
/// name, an IPv4 address or a bracketed IPv6 literal (`[::1]`). A health check looks at
/// a service on the agent's own host, so there is no https, no user info, no redirect.
struct HealthURL: Sendable, Equatable {
    /// The host to connect to, without brackets.
    var host: String
    var port: Int
    /// Path and query, as sent in the request line (at least `/`).
    var target: String

    /// The `Host` header value: the host as written (brackets included), with the port
    /// when it is not 80.
    var hostHeader: String {
        let name = host.contains(":") ? "[\(host)]" : host
        return port == 80 ? name : "\(name):\(port)"
    }

    struct ParseError: Error, CustomStringConvertible {
        let description: String
    }

    init(host: String, port: Int, target: String) {
        self.host = host
        self.port = port
        self.target = target
    }

    init(parsing text: String) throws(ParseError) {
        let scheme = "http://"
        guard text.lowercased().hasPrefix(scheme) else {
            throw ParseError(description: "only http:// URLs are supported")
        }
        // Request line and header injection: no whitespace or control characters at all.
        guard !text.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F }) else {
            throw ParseError(description: "the URL contains spaces or control characters")
        }
        var rest = Substring(text.dropFirst(scheme.count))
        if let fragment = rest.firstIndex(of: "#") { rest = rest[..<fragment] }
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        let pathAndQuery = rest[authorityEnd...]
        guard !authority.contains("@") else { throw ParseError(description: "user info is not supported") }

        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else {
                throw ParseError(description: "unterminated IPv6 literal")
            }
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
        } else {
            port = 80
        }
        target = pathAndQuery.hasPrefix("/") ? String(pathAndQuery) : "/" + pathAndQuery
    }
}
