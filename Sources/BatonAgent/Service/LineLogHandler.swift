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
import Logging

/// The daemon's log format: one event per line, logfmt-style, to standard error (which
/// journald records):
///
///     2026-05-01T10:00:00.123Z level=info msg="deployment accepted" baton.app=web baton.deployment.id=web-3 baton.host=web-1
///
/// Values with spaces, quotes or `=` are quoted; newlines inside a message or a value
/// are escaped, so a hook's multi-line output can never split an event. Only `batond run`
/// installs it (`LoggingSystem.bootstrap(LineLogHandler.standardError)`); libraries
/// just take a `Logger`.
public struct LineLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public var logLevel: Logger.Level = .info
    private let label: String
    private let write: @Sendable (String) -> Void

    public init(label: String, write: @escaping @Sendable (String) -> Void) {
        self.label = label
        self.write = write
    }

    /// A handler writing each line to standard error with a single write.
    public static func standardError(label: String) -> LineLogHandler {
        LineLogHandler(label: label) { line in
            var line = line
            line.withUTF8 { _ = DurableFiles.writeAll(2, UnsafeRawBufferPointer($0)) }
        }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        if let error = event.error { merged["error"] = "\(error)" }
        write(Self.format(time: Date(), level: event.level, message: event.message.description, metadata: merged))
    }

    static func format(time: Date, level: Logger.Level, message: String, metadata: Logger.Metadata) -> String {
        var line = timestamp(time)
        line += " level=" + level.rawValue
        line += " msg=" + quoted(message)
        for key in metadata.keys.sorted() {
            line += " " + key + "=" + quoted(render(metadata[key]!))
        }
        return line + "\n"
    }

    private static func render(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let text): text
        case .stringConvertible(let value): value.description
        case .array(let values): "[" + values.map(render).joined(separator: ",") + "]"
        case .dictionary(let entries): "{" + entries.keys.sorted().map { "\($0):\(render(entries[$0]!))" }.joined(separator: ",") + "}"
        }
    }

    /// Bare when it is a plain token, otherwise in double quotes with `\`, `"` and
    /// control characters escaped.
    static func quoted(_ text: String) -> String {
        let plain = !text.isEmpty && text.unicodeScalars.allSatisfy { $0.value > 0x20 && $0 != "\"" && $0 != "=" && $0 != "\\" && $0.value != 0x7F }
        if plain { return text }
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    /// RFC 3339 in UTC with milliseconds.
    static func timestamp(_ date: Date) -> String {
        let interval = date.timeIntervalSince1970
        let millis = String(Int((interval - interval.rounded(.down)) * 1000))
        let seconds = RFC3339.format(date)  // ends in "Z"
        return seconds.dropLast() + "." + String(repeating: "0", count: 3 - millis.count) + millis + "Z"
    }
}
