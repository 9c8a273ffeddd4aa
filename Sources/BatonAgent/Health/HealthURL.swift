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
        let parts: URLAuthority
        do { parts = try URLAuthority(parsing: text.dropFirst(scheme.count)) } catch { throw ParseError(description: error.description) }
        host = parts.host
        port = parts.port ?? 80
        target = parts.target
    }
}
