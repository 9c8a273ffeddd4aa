import Foundation

/// A running `batond run`, its stderr read line by line as it comes.
public final class Daemon: @unchecked Sendable {
    public let process: Process
    private let condition = NSCondition()
    private var lines: [String] = []
    private var closed = false
    public private(set) var apiPort = 0
    public private(set) var metricsPort = 0

    public static func start(config: String, extra: [String] = []) async throws -> Daemon {
        let daemon = Daemon(config: config, extra: extra)
        try daemon.process.run()
        daemon.startReading()
        let api = try await daemon.waitForLine(containing: "msg=\"api listening\"")
        let metrics = try await daemon.waitForLine(containing: "msg=\"metrics listening\"")
        daemon.apiPort = try Self.port(in: api)
        daemon.metricsPort = try Self.port(in: metrics)
        return daemon
    }

    private let errPipe = Pipe()

    private init(config: String, extra: [String]) {
        process = Process()
        process.executableURL = URL(fileURLWithPath: ProcessRunner.executable("batond"))
        process.arguments = ["run", "--config", config] + extra
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errPipe
        process.standardInput = FileHandle.nullDevice
    }

    private func startReading() {
        let handle = errPipe.fileHandleForReading
        Thread { [self] in
            var pending = Data()
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                pending.append(chunk)
                while let newline = pending.firstIndex(of: 0x0A) {
                    let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                    pending.removeSubrange(pending.startIndex...newline)
                    condition.lock()
                    lines.append(line)
                    condition.broadcast()
                    condition.unlock()
                }
            }
            condition.lock()
            closed = true
            condition.broadcast()
            condition.unlock()
        }.start()
    }

    public var pid: pid_t { process.processIdentifier }

    /// Everything logged so far.
    public var log: [String] {
        condition.lock()
        defer { condition.unlock() }
        return lines
    }

    public var logCount: Int { log.count }

    /// Waits for a log line containing all of `fragments`, among the lines from `from` on.
    @discardableResult
    public func waitForLine(containing fragments: String..., from: Int = 0, timeout: TimeInterval = 60) async throws -> String {
        try await offThePool { try self.blockingWaitForLine(fragments, from: from, timeout: timeout) }
    }

    private func blockingWaitForLine(_ fragments: [String], from: Int, timeout: TimeInterval) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        var index = from
        while true {
            while index < lines.count {
                let line = lines[index]
                index += 1
                if fragments.allSatisfy({ line.contains($0) }) { return line }
            }
            if closed {
                throw TestSupportError("batond ended before logging \(fragments); its log:\n\(lines.joined(separator: "\n"))")
            }
            if !condition.wait(until: deadline) {
                throw TestSupportError("no log line with \(fragments) within \(timeout)s; the log:\n\(lines.joined(separator: "\n"))")
            }
        }
    }

    /// Waits until `count` log lines contain `fragment`.
    public func waitForOccurrences(_ count: Int, of fragment: String, timeout: TimeInterval = 60) async throws {
        try await offThePool { try self.blockingWaitForOccurrences(count, of: fragment, timeout: timeout) }
    }

    private func blockingWaitForOccurrences(_ count: Int, of fragment: String, timeout: TimeInterval) throws {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        while lines.filter({ $0.contains(fragment) }).count < count {
            if closed || !condition.wait(until: deadline) {
                throw TestSupportError("fewer than \(count) log lines with \(fragment); the log:\n\(lines.joined(separator: "\n"))")
            }
        }
    }

    public func signal(_ signal: Int32) { kill(pid, signal) }

    /// Waits for the process to end and returns its exit status (nil: it did not end).
    public func waitForExit(timeout: TimeInterval = 60) async -> Int32? {
        let process = self.process
        return try? await offThePool { () -> Int32? in
            let deadline = Date().addingTimeInterval(timeout)
            while process.isRunning {
                if Date() > deadline { return nil }
                usleep(10_000)
            }
            return process.terminationStatus
        }
    }

    /// SIGKILL, and waits until it is gone (its data directory lock is free again).
    public func kill9() async {
        stop()
        _ = await waitForExit(timeout: 10)
    }

    /// SIGKILL without waiting: cleanup, so that every daemon a test starts ends.
    public func stop() {
        if process.isRunning { kill(pid, SIGKILL) }
    }

    private static func port(in line: String) throws -> Int {
        guard let range = line.range(of: "baton.listen=127.0.0.1:"),
            let port = Int(line[range.upperBound...].prefix { $0.isNumber })
        else { throw TestSupportError("no port in '\(line)'") }
        return port
    }

    deinit { stop() }
}

/// Runs blocking work (a child process, a wait on a daemon's log) on a thread of its own:
/// the tests must not hold the few cooperative threads that other tests' timers need.
public func offThePool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try work() }) }.start()
    }
}
