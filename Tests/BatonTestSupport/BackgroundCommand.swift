import Foundation

/// A command running in the background whose stdout is collected line by line as it
/// comes, so a test can wait for a line and act (kill an agent, say) at that moment.
public final class BackgroundCommand: @unchecked Sendable {
    public let process = Process()
    private let condition = NSCondition()
    private var lines: [String] = []
    private var closed = false
    private let outPipe = Pipe()
    private let errPipe = Pipe()
    private let errData = NSMutableData()

    public init(_ path: String, _ arguments: [String], currentDirectory: String) throws {
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory)
        process.standardOutput = outPipe
        process.standardError = errPipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let out = outPipe.fileHandleForReading
        Thread { [self] in
            var pending = Data()
            while true {
                let chunk = out.availableData
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
        let err = errPipe.fileHandleForReading
        Thread { [self] in
            let data = err.readDataToEndOfFile()
            condition.lock()
            errData.append(data)
            condition.unlock()
        }.start()
    }

    public var output: [String] {
        condition.lock()
        defer { condition.unlock() }
        return lines
    }

    public var stderr: String {
        condition.lock()
        defer { condition.unlock() }
        return String(decoding: errData as Data, as: UTF8.self)
    }

    /// Waits for a stdout line containing every fragment.
    @discardableResult
    public func waitForLine(containing fragments: String..., timeout: TimeInterval = 60) async throws -> String {
        try await offThePool { [self] in
            let deadline = Date().addingTimeInterval(timeout)
            condition.lock()
            defer { condition.unlock() }
            var index = 0
            while true {
                while index < lines.count {
                    let line = lines[index]
                    index += 1
                    if fragments.allSatisfy({ line.contains($0) }) { return line }
                }
                if closed { throw TestSupportError("the command ended before printing \(fragments):\n\(lines.joined(separator: "\n"))") }
                if !condition.wait(until: deadline) { throw TestSupportError("no line with \(fragments) within \(timeout)s") }
            }
        }
    }

    /// Waits for the end; the exit status (nil if it did not end in time, then killed).
    public func waitForExit(timeout: TimeInterval = 120) async -> Int32? {
        let process = self.process
        let status = try? await offThePool { () -> Int32? in
            let deadline = Date().addingTimeInterval(timeout)
            while process.isRunning {
                if Date() > deadline { return nil }
                usleep(10_000)
            }
            return process.terminationStatus
        }
        if status == nil { process.terminate() }
        // Let the reader drain what is left in the pipe.
        _ = try? await offThePool { [self] in
            condition.lock()
            defer { condition.unlock() }
            while !closed { if !condition.wait(until: Date().addingTimeInterval(5)) { break } }
        }
        return status
    }
}
