import Yams

/// A YAML file a person wrote, read with line numbers kept, so that every error names
/// the file, the line and what to fix. Used for the trust policy here, and by the agent
/// and controller for their configuration files. Parsing only: the caller reads the file.
public struct YAMLDocument: Sendable {
    public let file: String
    public let root: YAMLValue

    /// Parses `text`; `file` is only used in error messages.
    public init(text: String, file: String) throws(ConfigurationError) {
        self.file = file
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw ConfigurationError(.invalidYAML, "not valid YAML: \(Self.describe(error))", file: file, line: Self.line(of: error))
        } catch {
            throw ConfigurationError(.invalidYAML, "not valid YAML: \(error)", file: file)
        }
        guard let node else {
            throw ConfigurationError(.invalidYAML, "the file is empty", file: file, line: 1)
        }
        root = YAMLValue(node: node, file: file, path: "")
    }

    private static func line(of error: YamlError) -> Int? {
        switch error {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _):
            return mark.line
        case .duplicatedKeysInMapping(_, let context):
            return context.mark.line
        default:
            return nil
        }
    }

    private static func describe(_ error: YamlError) -> String {
        switch error {
        case .scanner(_, let problem, _, _), .parser(_, let problem, _, _), .composer(_, let problem, _, _):
            return problem
        case .duplicatedKeysInMapping(let duplicates, _):
            return "\(duplicates.map { "'\($0)'" }.joined(separator: ", ")) appears twice in one mapping"
        default:
            return "\(error)"
        }
    }
}

/// One node of a YAML document with its position, and typed accessors whose errors say
/// where the problem is.
public struct YAMLValue: @unchecked Sendable {
    // Yams.Node is an immutable value tree; it is not marked Sendable upstream.
    let node: Node
    public let file: String
    /// Dotted path of this value in the document, e.g. `environments.production.threshold`.
    public let path: String

    public var line: Int? { node.mark?.line }

    public func error(_ code: ConfigurationError.Code, _ message: String) -> ConfigurationError {
        ConfigurationError(code, path.isEmpty ? message : "\(path): \(message)", file: file, line: line)
    }

    private var kind: String {
        switch node {
        case .scalar: "a single value"
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        }
    }

    public func mapping() throws(ConfigurationError) -> YAMLMapping {
        guard case .mapping(let mapping) = node else {
            throw error(.invalidValue, "expected a mapping of names to values, found \(kind)")
        }
        var entries: [(key: String, value: YAMLValue)] = []
        for (key, value) in mapping {
            guard case .scalar(let scalar) = key else {
                throw YAMLValue(node: key, file: file, path: path).error(.invalidValue, "mapping keys must be plain names")
            }
            if entries.contains(where: { $0.key == scalar.string }) {
                throw YAMLValue(node: key, file: file, path: path)
                    .error(.invalidValue, "'\(scalar.string)' appears twice")
            }
            let childPath = path.isEmpty ? scalar.string : "\(path).\(scalar.string)"
            entries.append((scalar.string, YAMLValue(node: value, file: file, path: childPath)))
        }
        return YAMLMapping(owner: self, entries: entries)
    }

    public func list() throws(ConfigurationError) -> [YAMLValue] {
        guard case .sequence(let sequence) = node else {
            throw error(.invalidValue, "expected a list, found \(kind)")
        }
        return sequence.enumerated().map { YAMLValue(node: $0.element, file: file, path: "\(path)[\($0.offset)]") }
    }

    public func string() throws(ConfigurationError) -> String {
        guard case .scalar(let scalar) = node else {
            throw error(.invalidValue, "expected a single value, found \(kind)")
        }
        return scalar.string
    }

    public func int(in range: ClosedRange<Int>? = nil) throws(ConfigurationError) -> Int {
        let text = try string()
        guard let value = Int(text) else { throw error(.invalidValue, "'\(text)' is not a whole number") }
        if let range, !range.contains(value) {
            throw error(.invalidValue, "\(value) is out of range (\(range.lowerBound) to \(range.upperBound))")
        }
        return value
    }

    public func bool() throws(ConfigurationError) -> Bool {
        switch try string().lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        case let other: throw error(.invalidValue, "'\(other)' is not true or false")
        }
    }

    /// A name matching `Name.pattern` (apps, releases, hosts, environments, keys).
    public func name() throws(ConfigurationError) -> String {
        let text = try string()
        guard Name.isValid(text) else { throw error(.invalidValue, "'\(text)' must match \(Name.pattern)") }
        return text
    }

    public func duration() throws(ConfigurationError) -> BatonDuration {
        let text = try string()
        guard let duration = BatonDuration(parsing: text) else {
            throw error(.invalidValue, "'\(text)' is not a duration; write it like 500ms, 30s, 5m or 1h")
        }
        return duration
    }

    /// This value as a JSON-compatible tree, for decoding into Codable wire types
    /// (hooks and health checks in app files use the manifest's own shapes).
    public func jsonObject() throws(ConfigurationError) -> JSONValue {
        switch node {
        case .scalar(let scalar):
            if scalar.style == .plain {
                if let int = Int(scalar.string) { return .number(Double(int)) }
                switch scalar.string {
                case "true": return .bool(true)
                case "false": return .bool(false)
                case "null", "~": return .null
                default: break
                }
            }
            return .string(scalar.string)
        case .sequence:
            var items: [JSONValue] = []
            for item in try list() { items.append(try item.jsonObject()) }
            return .array(items)
        case .mapping:
            var object: [String: JSONValue] = [:]
            for entry in try mapping().entries { object[entry.key] = try entry.value.jsonObject() }
            return .object(object)
        case .alias:
            throw error(.invalidValue, "YAML aliases are not supported here")
        }
    }
}

/// A YAML mapping with its entries in file order.
public struct YAMLMapping: Sendable {
    public let owner: YAMLValue
    public let entries: [(key: String, value: YAMLValue)]

    public subscript(key: String) -> YAMLValue? { entries.first { $0.key == key }?.value }

    public func require(_ key: String) throws(ConfigurationError) -> YAMLValue {
        guard let value = self[key] else {
            throw owner.error(.missingField, "missing '\(key)'")
        }
        return value
    }

    /// Refuses keys that are not in `allowed`: a typo must not silently mean "default".
    public func allowOnly(_ allowed: [String]) throws(ConfigurationError) {
        for entry in entries where !allowed.contains(entry.key) {
            throw entry.value.error(
                .unknownField, "unknown field '\(entry.key)'; expected one of: \(allowed.joined(separator: ", "))")
        }
    }
}

/// A JSON value, for handing YAML subtrees to Codable types.
public enum JSONValue: Sendable, Equatable, Codable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let n):
            if n == n.rounded(), abs(n) < 1e15 { try c.encode(Int64(n)) } else { try c.encode(n) }
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }
}
