import Foundation

/// Files that many tests need alike and that are slow to make (a fleet CA and its
/// certificates, signing keys: each a `baton pki` or `baton keys` process), made once
/// per test process by their recipe and copied into each test's own directory. Every
/// test still gets files of its own to change or delete; what it no longer pays for is
/// the same half-dozen processes each time. The commands themselves are tested where
/// they are the subject (PKICommandTests, InitTests, ...).
public final class SharedFiles: @unchecked Sendable {
    public static let shared = SharedFiles()

    private let lock = NSLock()
    private var root: TemporaryDirectory?
    private var made: [String: String] = [:]

    private init() {
        // The originals live until the test process ends; nothing else removes them.
        atexit { SharedFiles.shared.removeAll() }
    }

    /// Copies the files named `key` into `destination` (created if need be; existing
    /// entries of the same name are an error), making them first with `make`, which
    /// writes into the directory it is given, if this process has not made them yet.
    /// `cp -a` keeps each file's mode: batond refuses a private key others can read.
    public func copy(_ key: String, to destination: String, make: (String) throws -> Void) throws {
        let source = try original(key, make: make)
        try FileManager.default.createDirectory(atPath: destination, withIntermediateDirectories: true)
        let result = try ProcessRunner.run("/bin/cp", ["-a", "\(source)/.", destination])
        guard result.status == 0 else { throw TestSupportError("cp -a \(source)/. \(destination) failed: \(result.stderr)") }
    }

    private func original(_ key: String, make: (String) throws -> Void) throws -> String {
        lock.lock()
        defer { lock.unlock() }
        if let path = made[key] { return path }
        if root == nil { root = try TemporaryDirectory(prefix: "baton-shared") }
        let path = root!.child(key)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        do {
            try make(path)
        } catch {
            // A half-made set is not reused: the next test tries again and fails alike.
            try? FileManager.default.removeItem(atPath: path)
            throw error
        }
        made[key] = path
        return path
    }

    private func removeAll() {
        lock.lock()
        defer { lock.unlock() }
        // FileManager alone: the files are writable, and starting a process (chmod) while
        // the test process exits is asking for trouble.
        if let root { try? FileManager.default.removeItem(atPath: root.path) }
        root = nil
        made = [:]
    }
}
