import CYAML

/// A YAML file a person wrote, read with line numbers kept, so that every error names
/// the file, the line and what to fix. Used for the trust policy here, and by the agent
/// and controller for their configuration files. Parsing only: the caller reads the file.
///
/// The parser is libyaml (the C library every YAML stack on Linux builds on), driven
/// event by event into `YAMLNode`s. Not Yams: Yams imports the whole of Foundation, ICU
/// data included, which would be most of `batond`'s binary and a good part of its memory.
public struct YAMLDocument: Sendable {
    public let file: String
    public let root: YAMLValue

    /// Parses `text`; `file` is only used in error messages.
    public init(text: String, file: String) throws(ConfigurationError) {
        self.file = file
        guard let node = try YAMLComposer.compose(text, file: file) else {
            throw ConfigurationError(.invalidYAML, "the file is empty", file: file, line: 1)
        }
        root = YAMLValue(node: node, file: file, path: "")
    }
}

/// One node of a parsed YAML document: a scalar (with whether it was written plain, so
/// `1` and `"1"` can differ where that matters), a list or a mapping, and its line.
struct YAMLNode: Sendable {
    indirect enum Content: Sendable {
        case scalar(String, plain: Bool)
        case sequence([YAMLNode])
        case mapping([(key: YAMLNode, value: YAMLNode)])
    }
    let content: Content
    /// 1-based line where the node starts.
    let line: Int
}

/// Builds `YAMLNode`s from libyaml's event stream: one document, no aliases, duplicate
/// keys refused, nesting bounded.
private final class YAMLComposer {
    static let maximumDepth = 64
    // Heap-allocated: libyaml keeps the parser at one address for its whole life.
    private let parser = UnsafeMutablePointer<yaml_parser_t>.allocate(capacity: 1)
    private let file: String

    static func compose(_ text: String, file: String) throws(ConfigurationError) -> YAMLNode? {
        var bytes = Array(text.utf8)
        if bytes.isEmpty { bytes = [0x0A] }  // libyaml needs a buffer to point at
        return try bytes.withUnsafeBufferPointer { (buffer) throws(ConfigurationError) -> YAMLNode? in
            let composer = YAMLComposer(file: file)
            yaml_parser_set_input_string(composer.parser, buffer.baseAddress, text.utf8.count)
            return try composer.document()
        }
    }

    private init(file: String) {
        self.file = file
        parser.initialize(to: yaml_parser_t())
        yaml_parser_initialize(parser)
    }

    deinit {
        yaml_parser_delete(parser)
        parser.deallocate()
    }

    /// The stream's only document, or nil for a stream with none (an empty file, or only
    /// comments).
    private func document() throws(ConfigurationError) -> YAMLNode? {
        try expect(next(), YAML_STREAM_START_EVENT)
        var event = try next()
        if event.type == YAML_STREAM_END_EVENT { return nil }
        try expect(event, YAML_DOCUMENT_START_EVENT)
        let root = try node(try next(), depth: 0)
        try expect(next(), YAML_DOCUMENT_END_EVENT)
        event = try next()
        guard event.type == YAML_STREAM_END_EVENT else {
            throw invalid("the file holds more than one YAML document ('---'); keep one", line: event.line)
        }
        return root
    }

    private func node(_ event: Event, depth: Int) throws(ConfigurationError) -> YAMLNode {
        guard depth < Self.maximumDepth else {
            throw invalid("nested more than \(Self.maximumDepth) levels deep", line: event.line)
        }
        switch event.type {
        case YAML_SCALAR_EVENT:
            return YAMLNode(content: .scalar(event.text, plain: event.isPlain), line: event.line)
        case YAML_SEQUENCE_START_EVENT:
            var items: [YAMLNode] = []
            while true {
                let item = try next()
                if item.type == YAML_SEQUENCE_END_EVENT { break }
                items.append(try node(item, depth: depth + 1))
            }
            return YAMLNode(content: .sequence(items), line: event.line)
        case YAML_MAPPING_START_EVENT:
            var entries: [(key: YAMLNode, value: YAMLNode)] = []
            while true {
                let keyEvent = try next()
                if keyEvent.type == YAML_MAPPING_END_EVENT { break }
                let key = try node(keyEvent, depth: depth + 1)
                if case .scalar(let name, _) = key.content,
                    let first = entries.first(where: { if case .scalar(name, _) = $0.key.content { true } else { false } })
                {
                    throw invalid("'\(name)' appears twice in one mapping (first on line \(first.key.line)); keep one", line: key.line)
                }
                entries.append((key, try node(try next(), depth: depth + 1)))
            }
            return YAMLNode(content: .mapping(entries), line: event.line)
        case YAML_ALIAS_EVENT:
            throw invalid("YAML aliases (*name) are not supported; write the value out", line: event.line)
        default:
            throw invalid("unexpected YAML structure", line: event.line)
        }
    }

    private func expect(_ event: Event, _ type: yaml_event_type_t) throws(ConfigurationError) {
        guard event.type == type else { throw invalid("unexpected YAML structure", line: event.line) }
    }

    private func invalid(_ problem: String, line: Int) -> ConfigurationError {
        ConfigurationError(.invalidYAML, "not valid YAML: \(problem)", file: file, line: line)
    }

    /// The next event, copied out of libyaml's buffers (which the next call reuses).
    private func next() throws(ConfigurationError) -> Event {
        var raw = yaml_event_t()
        guard yaml_parser_parse(parser, &raw) == 1 else {
            let problem = parser.pointee.problem.map { String(cString: $0) } ?? "unreadable input"
            let context = parser.pointee.context.map { String(cString: $0) }
            let mark = parser.pointee.problem_mark
            throw invalid(context.map { "\(problem) \($0)" } ?? problem, line: Int(mark.line) + 1)
        }
        defer { yaml_event_delete(&raw) }
        var event = Event(type: raw.type, line: Int(raw.start_mark.line) + 1)
        if raw.type == YAML_SCALAR_EVENT {
            let scalar = raw.data.scalar
            event.text = String(decoding: UnsafeBufferPointer(start: scalar.value, count: scalar.length), as: UTF8.self)
            // An explicit tag (`!!str 1`) means the author did not leave the type to the reader.
            event.isPlain = scalar.style == YAML_PLAIN_SCALAR_STYLE && scalar.tag == nil
        }
        return event
    }

    private struct Event {
        let type: yaml_event_type_t
        let line: Int
        var text = ""
        var isPlain = false
    }
}

/// One node of a YAML document with its position, and typed accessors whose errors say
/// where the problem is.
public struct YAMLValue: Sendable {
    let node: YAMLNode
    public let file: String
    /// Dotted path of this value in the document, e.g. `environments.production.threshold`.
    public let path: String

    public var line: Int? { node.line }

    public func error(_ code: ConfigurationError.Code, _ message: String) -> ConfigurationError {
        ConfigurationError(code, path.isEmpty ? message : "\(path): \(message)", file: file, line: line)
    }

    private var kind: String {
        switch node.content {
        case .scalar: "a single value"
        case .mapping: "a mapping"
        case .sequence: "a list"
        }
    }

    public func mapping() throws(ConfigurationError) -> YAMLMapping {
        guard case .mapping(let mapping) = node.content else {
            throw error(.invalidValue, "expected a mapping of names to values, found \(kind)")
        }
        var entries: [(key: String, value: YAMLValue)] = []
        for (key, value) in mapping {
            guard case .scalar(let name, _) = key.content else {
                throw YAMLValue(node: key, file: file, path: path).error(.invalidValue, "mapping keys must be plain names")
            }
            let childPath = path.isEmpty ? name : "\(path).\(name)"
            entries.append((name, YAMLValue(node: value, file: file, path: childPath)))
        }
        return YAMLMapping(owner: self, entries: entries)
    }

    public func list() throws(ConfigurationError) -> [YAMLValue] {
        guard case .sequence(let sequence) = node.content else {
            throw error(.invalidValue, "expected a list, found \(kind)")
        }
        return sequence.enumerated().map { YAMLValue(node: $0.element, file: file, path: "\(path)[\($0.offset)]") }
    }

    public func string() throws(ConfigurationError) -> String {
        guard case .scalar(let text, _) = node.content else {
            throw error(.invalidValue, "expected a single value, found \(kind)")
        }
        return text
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
    static func isDecimal(_ text: String) -> Bool {
        text.wholeMatch(of: /-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?/) != nil
    }

    public func jsonObject() throws(ConfigurationError) -> JSONValue {
        switch node.content {
        case .scalar(let text, let plain):
            if plain {
                if let int = Int(text) { return .number(Double(int)) }
                // Decimals (`0.05`, `1e-3`), for metric bounds; `1.2.3`, `inf`, `.5` stay text.
                if Self.isDecimal(text), let double = Double(text) { return .number(double) }
                switch text {
                case "true": return .bool(true)
                case "false": return .bool(false)
                case "null", "~": return .null
                default: break
                }
            }
            return .string(text)
        case .sequence:
            var items: [JSONValue] = []
            for item in try list() { items.append(try item.jsonObject()) }
            return .array(items)
        case .mapping:
            var object: [String: JSONValue] = [:]
            for entry in try mapping().entries { object[entry.key] = try entry.value.jsonObject() }
            return .object(object)
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
