import Foundation

/// The outcome of running a program to completion.
public struct ProcessResult: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String
    /// True when the process was ended by a signal rather than exiting.
    public let signalled: Bool
}

/// Runs programs the way an operator's shell would: argv, an optional environment,
/// standard input from a string, output captured.
public enum ProcessRunner {
    /// The directory holding the package's built executables (`baton`, `batond`):
    /// the test runner itself lives in the same build products directory.
    public static var productsDirectory: String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0]
        var dir = (exe as NSString).deletingLastPathComponent
        // On Linux the runner is `<products>/<package>PackageTests.xctest`; on macOS it is
        // inside a bundle, a few levels further down.
        while !dir.isEmpty, dir != "/", !FileManager.default.fileExists(atPath: dir + "/baton") {
            dir = (dir as NSString).deletingLastPathComponent
        }
        return dir
    }

    /// The full path of a built executable of this package.
    public static func executable(_ name: String) -> String { "\(productsDirectory)/\(name)" }

    /// The package's root directory (where Package.swift is), for its scripts.
    public static let packageRoot: String = {
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while dir.path != "/" {
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) { return dir.path }
            dir = dir.deletingLastPathComponent()
        }
        return FileManager.default.currentDirectoryPath
    }()

    @discardableResult
    public static func run(
        _ path: String,
        _ arguments: [String],
        environment: [String: String]? = nil,
        currentDirectory: String? = nil,
        input: String? = nil
    ) throws -> ProcessResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        if let environment {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
        let out = Pipe(), err = Pipe(), inp = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = inp
        try process.run()
        if let input { inp.fileHandleForWriting.write(Data(input.utf8)) }
        try? inp.fileHandleForWriting.close()
        // Read both pipes concurrently so a chatty child never blocks on a full pipe.
        let errData = LockedData()
        let errReader = Thread { errData.set(err.fileHandleForReading.readDataToEndOfFile()) }
        errReader.start()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while !errData.done { usleep(1000) }
        return ProcessResult(
            status: process.terminationStatus,
            stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData.value, as: UTF8.self),
            signalled: process.terminationReason == .uncaughtSignal
        )
    }

    /// Runs one of this package's executables (`baton`, `batond`).
    @discardableResult
    public static func runTool(
        _ name: String,
        _ arguments: [String],
        environment: [String: String]? = nil,
        currentDirectory: String? = nil,
        input: String? = nil
    ) throws -> ProcessResult {
        try run(executable(name), arguments, environment: environment, currentDirectory: currentDirectory, input: input)
    }
}

private final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    private var finished = false
    func set(_ d: Data) { lock.lock(); data = d; finished = true; lock.unlock() }
    var done: Bool { lock.lock(); defer { lock.unlock() }; return finished }
    var value: Data { lock.lock(); defer { lock.unlock() }; return data }
}
