import Foundation

/// A directory under the system temporary directory that is removed when `remove()` is
/// called (tests call it in `defer`). Each test gets its own, so tests can run in parallel.
public struct TemporaryDirectory: Sendable {
    public let path: String

    public init(prefix: String = "baton-test") throws {
        let base = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
        var template = Array("\(base)/\(prefix).XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer -> UnsafeMutablePointer<CChar>? in
            mkdtemp(buffer.baseAddress!)
        }
        guard made != nil else {
            throw TestSupportError("mkdtemp failed: \(String(cString: strerror(errno)))")
        }
        path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// `path` joined with a relative name.
    public func child(_ name: String) -> String { "\(path)/\(name)" }

    public func remove() {
        // Make everything writable first: tests create read-only files and directories.
        _ = try? ProcessRunner.run("/bin/chmod", ["-R", "u+rwX", path])
        try? FileManager.default.removeItem(atPath: path)
    }
}

public struct TestSupportError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
