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
    /// `accepted`, `refused`, `duplicate`, `refusals` (a count of refusals coalesced into
    /// one line), `finished`, or `chain_broken` (the agent found its chain broken).
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
    /// Who made the request: the controller's name, or `local` for `batond apply`.
    public var peer: String?
    /// For `refusals`: how many refusals the line stands for.
    public var count: Int?
    /// For `accepted`: true when a change freeze was in force and the manifest passed by
    /// breaking glass (absent otherwise).
    public var breakGlass: Bool?
    /// SHA-256 (hex) of the previous line's bytes; 64 zeros for the first line.
    public var prev: String

    public init(event: String, time: Date, hostID: String, app: String? = nil, release: String? = nil,
                serial: UInt64? = nil, deploymentID: String? = nil, payloadDigest: String? = nil,
                signers: [String]? = nil, result: String? = nil, message: String? = nil, peer: String? = nil,
                count: Int? = nil, breakGlass: Bool? = nil, prev: String = "") {
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
        self.peer = peer
        self.count = count
        self.breakGlass = breakGlass
        self.prev = prev
    }
}

/// `state/audit.log`: append-only JSON lines, each carrying the SHA-256 of the line
/// before it, so that a changed, removed or reordered line breaks the chain. The hash of
/// the last line is kept in `state/audit.head`, so a change to the last line shows too.
///
/// The chain is checked when the log is opened, and before every append the file must
/// still be exactly what this process last wrote (its size and the hash of its last
/// line). A break is never carried on silently: it is recorded in the chain itself as a
/// `chain_broken` line (chained to what the file holds now), kept in `problem` for the
/// health endpoint, status and metrics, and the broken verdict stays: `audit verify`
/// keeps naming the first broken line. Truncating the log and rewriting the head while
/// the agent is stopped leaves a consistent, shorter chain that only a copy kept
/// elsewhere can expose: that is what the signed head (`signedHead`) is for.
public final class AuditLog: @unchecked Sendable {
    static let genesis = String(repeating: "0", count: 64)

    private let layout: DataLayout
    private let lock = NIOLock()
    private var lastHash: String
    private var count: Int
    /// The log's size after this process's last append (or when it was opened).
    private var expectedSize: Int
    private var currentProblem: String?

    init(layout: DataLayout, now: Date = Date(), hostID: String = "") throws(AgentError) {
        self.layout = layout
        let head = AuditLog.readHead(layout)
        lastHash = head?.hash ?? AuditLog.genesis
        count = head?.lines ?? 0
        expectedSize = 0
        // A crash between appending a line and writing the head leaves the head one line
        // behind: catch up from the log itself.
        let data = FileManager.default.contents(atPath: layout.auditLog)
        if let data {
            let lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true)
            if lines.count == count + 1, let last = lines.last {
                lastHash = Digest.sha256Hex(last)
                count += 1
                try writeHead()
            }
        }
        expectedSize = data?.count ?? 0
        if case .broken(let line, let reason) = AuditLog.verify(layout: layout) {
            let problem = "line \(line) of the audit log: \(reason)"
            currentProblem = problem
            if !AuditLog.recordsBreak(atLine: line, in: data) {
                try recordBreak(line: line, reason: reason, time: now, hostID: hostID)
            }
        }
    }

    /// Why the chain is not intact, or nil while it is.
    public var problem: String? { lock.withLock { currentProblem } }

    /// Lines in the chain and the hash of the last one.
    public var head: (lines: Int, hash: String) { lock.withLock { (count, lastHash) } }

    /// `append` on the blocking pool: it fsyncs the log and rewrites the head.
    func appendOffPool(_ entry: AuditEntry) async throws(AgentError) {
        try await Blocking.files { () throws(AgentError) in try self.append(entry) }
    }

    /// Appends an entry durably, chained to the previous one. When the file is no longer
    /// what this process last wrote, the break is recorded first.
    func append(_ entry: AuditEntry) throws(AgentError) {
        lock.lock()
        defer { lock.unlock() }
        if let changed = changedSinceLastAppend() {
            currentProblem = "the audit log was changed behind the agent's back: \(changed)"
            try recordBreak(line: count + 1, reason: changed, time: entry.time, hostID: entry.hostID)
        }
        try appendLocked(entry)
    }

    private func appendLocked(_ entry: AuditEntry) throws(AgentError) {
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
        var info = stat()
        expectedSize = fstat(fd, &info) == 0 ? Int(info.st_size) : expectedSize + bytes.count
        lastHash = Digest.sha256Hex(line)
        count += 1
        try writeHead()
    }

    /// What changed in the file since this process last wrote it, or nil. Reads only the
    /// tail: the whole chain is checked when the log is opened and by `audit verify`.
    private func changedSinceLastAppend() -> String? {
        var info = stat()
        guard stat(layout.auditLog, &info) == 0 else {
            return expectedSize == 0 ? nil : "the file is gone"
        }
        guard Int(info.st_size) == expectedSize else {
            return "it is \(info.st_size) bytes, but the agent last left it at \(expectedSize)"
        }
        guard expectedSize > 0 else { return nil }
        guard let last = AuditLog.lastLine(layout.auditLog, size: expectedSize), Digest.sha256Hex(last) == lastHash else {
            return "its last line is not the one the agent wrote"
        }
        return nil
    }

    /// Records a break as a `chain_broken` line chained to the file as it is now, and
    /// carries on from there, so the break itself is part of the evidence.
    private func recordBreak(line: Int, reason: String, time: Date, hostID: String) throws(AgentError) {
        let data = FileManager.default.contents(atPath: layout.auditLog) ?? Data()
        let lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true)
        lastHash = lines.last.map { Digest.sha256Hex($0) } ?? AuditLog.genesis
        count = lines.count
        expectedSize = data.count
        try appendLocked(
            AuditEntry(
                event: "chain_broken", time: time, hostID: hostID, result: "line \(line)",
                message: "the agent found its audit chain broken at line \(line): \(reason)"))
    }

    /// True when a `chain_broken` line already records a break at `line` (the agent
    /// restarted since it recorded it).
    private static func recordsBreak(atLine line: Int, in data: Data?) -> Bool {
        guard let data else { return false }
        return data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true).contains { raw in
            guard let entry = try? BatonJSON.decode(AuditEntry.self, from: Data(raw)) else { return false }
            return entry.event == "chain_broken" && entry.result == "line \(line)"
        }
    }

    /// The last line of the first `size` bytes of the file (without its newline).
    private static func lastLine(_ path: String, size: Int) -> Data? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        // Audit lines are small (an entry with a message of a few hundred bytes).
        let window = min(size, 64 << 10)
        var buffer = [UInt8](repeating: 0, count: window)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, window, off_t(size - window)) }
        guard n == window else { return nil }
        var bytes = buffer[...]
        if bytes.last == 0x0A { bytes = bytes.dropLast() }
        if let newline = bytes.lastIndex(of: 0x0A) { bytes = bytes[(newline + 1)...] } else if window < size { return nil }
        return Data(bytes)
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

    /// The hash of line `number` (1-based) of the chain as the file holds it now, or nil
    /// when it has fewer lines.
    func hash(ofLine number: Int) -> String? {
        guard number > 0, let data = FileManager.default.contents(atPath: layout.auditLog) else { return nil }
        let lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true)
        return number <= lines.count ? Digest.sha256Hex(lines[number - 1]) : nil
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
            if let head, head.lines > 0 { return .broken(line: 1, reason: "the audit log is missing") }
            // Deployments were recorded, so the log had lines: it was deleted with its head.
            let records = ((try? FileManager.default.contentsOfDirectory(atPath: layout.deploymentsDirectory)) ?? [])
                .filter { $0.hasSuffix(".json") }
            return records.isEmpty
                ? .intact(lines: 0)
                : .broken(line: 1, reason: "the audit log and audit.head are gone, but \(records.count) deployment record(s) exist")
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
        // A break the agent found and recorded stays a break: the links after it are
        // sound, but what came before it can no longer be vouched for.
        if let recorded = entries.firstIndex(where: { $0.event == "chain_broken" }) {
            let entry = entries[recorded]
            let line = entry.result.flatMap { Int($0.dropFirst("line ".count)) } ?? recorded + 1
            return .broken(
                line: line,
                reason: "recorded at line \(recorded + 1) on \(RFC3339.format(entry.time)): \(entry.message ?? "the chain was broken")")
        }
        return .intact(lines: lines.count)
    }
}
