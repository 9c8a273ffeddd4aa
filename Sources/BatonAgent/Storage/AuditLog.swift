import BatonProtocol
import NIOConcurrencyHelpers
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

/// One line of the audit log.
public struct AuditEntry: Codable, Sendable, Equatable {
    /// `accepted`, `refused`, `duplicate`, or `finished`.
    public var event: String
    public var time: Date
    public var hostID: String
    public var app: String?
    public var release: String?
    public var serial: UInt64?
    public var deploymentID: String?
    public var payloadDigest: String?
    public var signers: [String]?
    /// For `refused`: the verification code. For `finished`: the final phase.
    public var result: String?
    public var message: String?
    /// SHA-256 (hex) of the previous line's bytes; 64 zeros for the first line.
    public var prev: String

    public init(event: String, time: Date, hostID: String, app: String? = nil, release: String? = nil,
                serial: UInt64? = nil, deploymentID: String? = nil, payloadDigest: String? = nil,
                signers: [String]? = nil, result: String? = nil, message: String? = nil, prev: String = "") {
        self.event = event
        self.time = time
        self.hostID = hostID
        self.app = app
        self.release = release
        self.serial = serial
        self.deploymentID = deploymentID
        self.payloadDigest = payloadDigest
        self.signers = signers
        self.result = result
        self.message = message
        self.prev = prev
    }
}

/// `state/audit.log`: append-only JSON lines, each carrying the SHA-256 of the line
/// before it, so that a changed, removed or reordered line breaks the chain. The hash of
/// the last line is kept in `state/audit.head`, so a change to the last line shows too.
public final class AuditLog: @unchecked Sendable {
    static let genesis = String(repeating: "0", count: 64)

    private let layout: DataLayout
    private let lock = NIOLock()
    private var lastHash: String
    private var count: Int

    init(layout: DataLayout) throws(AgentError) {
        self.layout = layout
        let head = AuditLog.readHead(layout)
        lastHash = head?.hash ?? AuditLog.genesis
        count = head?.lines ?? 0
        // A crash between appending a line and writing the head leaves the head one line
        // behind: catch up from the log itself.
        if let data = FileManager.default.contents(atPath: layout.auditLog) {
            let lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true)
            if lines.count == count + 1, let last = lines.last {
                lastHash = Digest.sha256Hex(last)
                count += 1
                try writeHead()
            }
        }
    }

    /// Appends an entry durably, chained to the previous one.
    func append(_ entry: AuditEntry) throws(AgentError) {
        lock.lock()
        defer { lock.unlock() }
        var entry = entry
        entry.prev = lastHash
        let line: Data
        do {
            line = try BatonJSON.encode(entry)
        } catch {
            throw AgentError(.ioError, "cannot encode audit entry: \(error)")
        }
        let fd = open(layout.auditLog, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, DurableFiles.privateFileMode)
        guard fd >= 0 else { throw AgentError.io("open audit log") }
        defer { close(fd) }
        // Exactly 0600 whatever the umask; a log an older agent made 0640 is tightened too.
        guard fchmod(fd, DurableFiles.privateFileMode) == 0 else { throw AgentError.io("set the mode of the audit log") }
        var bytes = line
        bytes.append(0x0A)
        let ok = bytes.withUnsafeBytes { DurableFiles.writeAll(fd, $0) } && fsync(fd) == 0
        guard ok else { throw AgentError.io("append to audit log") }
        lastHash = Digest.sha256Hex(line)
        count += 1
        try writeHead()
    }

    private func writeHead() throws(AgentError) {
        try DurableFiles.write(Data("\(count) \(lastHash)\n".utf8), to: layout.auditHead)
    }

    private static func readHead(_ layout: DataLayout) -> (lines: Int, hash: String)? {
        guard let data = FileManager.default.contents(atPath: layout.auditHead) else { return nil }
        let parts = String(decoding: data, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard parts.count == 2, let lines = Int(parts[0]), Digest.isSHA256Hex(String(parts[1])) else { return nil }
        return (lines, String(parts[1]))
    }

    /// The result of checking the chain.
    public enum Verdict: Equatable, Sendable {
        case intact(lines: Int)
        /// `line` is 1-based: the first line that was changed, removed or added.
        case broken(line: Int, reason: String)
    }

    /// Checks that every line hashes to what the line after it (or `audit.head`, for the
    /// last line) recorded, and names the first line that does not: a changed byte
    /// anywhere in line k, its `prev` field included, changes line k's hash.
    static func verify(layout: DataLayout) -> Verdict {
        let head = readHead(layout)
        guard let data = FileManager.default.contents(atPath: layout.auditLog) else {
            return head == nil || head?.lines == 0 ? .intact(lines: 0) : .broken(line: 1, reason: "the audit log is missing")
        }
        var lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { Data($0) }
        if lines.last?.isEmpty == true { lines.removeLast() }
        var entries: [AuditEntry] = []
        for (index, line) in lines.enumerated() {
            guard let entry = try? BatonJSON.decode(AuditEntry.self, from: line) else {
                return .broken(line: index + 1, reason: "not a valid audit entry")
            }
            entries.append(entry)
        }
        guard let head else {
            return lines.isEmpty ? .intact(lines: 0) : .broken(line: lines.count, reason: "audit.head is missing")
        }
        if entries.first.map({ $0.prev != genesis }) == true, lines.count == 1 || Digest.sha256Hex(lines[0]) == entries[1].prev {
            return .broken(line: 1, reason: "the first line does not start the chain")
        }
        for index in lines.indices {
            let recorded = index + 1 < lines.count ? entries[index + 1].prev : head.hash
            if Digest.sha256Hex(lines[index]) != recorded {
                let by = index + 1 < lines.count ? "line \(index + 2)" : "audit.head"
                return .broken(line: index + 1, reason: "its hash does not match the one \(by) recorded: it was changed")
            }
        }
        if head.lines != lines.count {
            return .broken(
                line: min(head.lines, lines.count) + 1,
                reason: "the log has \(lines.count) lines but audit.head records \(head.lines)")
        }
        return .intact(lines: lines.count)
    }
}
