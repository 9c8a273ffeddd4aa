import ArgumentParser
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

/// An error a command reports to the operator: one line, `error: <code>: <message>`,
/// and an exit status. Library errors are turned into this at the command's edge.
public struct CLIError: CodedError {
    public let code: String
    public let message: String
    public let exitCode: Int32

    /// Exit statuses, documented in the README.
    public enum Status {
        /// The operation failed (a deployment failed, a verification was refused).
        public static let failure: Int32 = 1
        /// Usage or configuration errors: bad flags, missing or malformed files.
        public static let usage: Int32 = 2
        /// The host needs a person: a rollback failed, or the agent's state is unreadable.
        public static let needsAttention: Int32 = 3
        /// Another live rollout holds the app's lock (or this one lost it).
        public static let lockHeld: Int32 = 4

        /// The exit status of a library error reported by its code: the few codes that
        /// mean something other than "fix what you typed or named".
        public static func of(code: String) -> Int32 {
            switch code {
            case "lock_held": lockHeld
            case "nothing_to_roll_back": failure
            // A failing disk or a bug, not the operator's input.
            case "io_error", "internal_error": failure
            default: usage
            }
        }
    }

    public init(code: String, message: String, exitCode: Int32 = Status.usage) {
        self.code = code
        self.message = message
        self.exitCode = exitCode
    }

    /// The codes of the command line itself: problems with what an operator typed or
    /// named that no library reports. Library errors keep their own codes.
    public enum Code: String, Sendable, CaseIterable {
        case fileNotFound = "file_not_found"
        case fileUnreadable = "file_unreadable"
        case fileExists = "file_exists"
        case writeFailed = "write_failed"
        /// A host selection (`--hosts`, `--selector`) that cannot be applied.
        case invalidSelection = "invalid_selection"
        /// A `--selector` that is not `key=value[,key=value...]`.
        case invalidSelector = "invalid_selector"
        /// Rollout strategy flags that contradict each other or are out of range.
        case invalidStrategy = "invalid_strategy"
        /// An error no library gave a code to: a bug.
        case internalError = "internal_error"
    }

    public init(_ code: Code, _ message: String, exitCode: Int32 = Status.usage) {
        self.init(code: code.rawValue, message: message, exitCode: exitCode)
    }

    public var reportedCode: String { code }

    public var description: String { "\(code): \(message)" }

    /// Whether `text` starts with a stable code (`invalid_strategy: ...`).
    static func hasCode(_ text: Substring) -> Bool {
        guard let colon = text.firstIndex(of: ":"), colon > text.startIndex,
              text[text.index(after: colon)...].hasPrefix(" ") else { return false }
        return text[..<colon].allSatisfy { $0.isLowercase || $0.isNumber || $0 == "_" } && text.first!.isLowercase
    }
}

/// The one mapping from the errors of the libraries to what a command reports: the
/// error's stable code and its operator message, with an exit status from `Status`.
extension CLIError {
    /// `error` as the command reports it. Usage and configuration problems are the
    /// common case at a command's edge, hence the default.
    public init(_ error: any CodedError, exitCode: Int32? = nil) {
        if let error = error as? CLIError {
            self = error
        } else {
            // One line, whatever a parser's error text held.
            let message = error.operatorMessage.split(whereSeparator: \.isNewline).joined(separator: " ")
            self.init(code: error.reportedCode, message: message, exitCode: exitCode ?? Status.of(code: error.reportedCode))
        }
    }

    /// Any error out of a mixed `do` block: a coded one by the mapping above, anything
    /// else as `internal_error` (a bug: the libraries throw coded errors only).
    public static func reporting(_ error: any Error, exitCode: Int32? = nil) -> CLIError {
        switch error {
        case let error as any CodedError: CLIError(error, exitCode: exitCode)
        default: CLIError(.internalError, "\(error)", exitCode: Status.failure)
        }
    }

    /// The line a command prints on its way out.
    public var line: String { "error: \(code): \(message)" }
}

/// Runs a library operation, reporting its error by the one mapping above.
public func reported<T, Failure: CodedError>(_ body: () throws(Failure) -> T) throws(CLIError) -> T {
    do { return try body() } catch { throw CLIError(error) }
}

extension CodedError {
    /// This error as a command reports it, with the exit status its code calls for.
    public var cli: CLIError { CLIError(self) }
}

/// Runs a root command as `main()`: parses, runs, and reports every error as one line
/// with a stable code instead of a stack trace or argument-parser's default text.
public enum CommandMain {
    public static func run<Root: AsyncParsableCommand>(_ root: Root.Type, arguments: [String]? = nil) async -> Never {
        do {
            var command = try Root.parseAsRoot(arguments)
            if var async = command as? any AsyncParsableCommand {
                try await async.run()
            } else {
                try command.run()
            }
            exit(0)
        } catch let error as any CodedError {
            // A library error no command converted: its own code, and the exit status
            // that code calls for.
            let reported = CLIError(error)
            Output.error(reported.line)
            exit(reported.exitCode)
        } catch let error as ExitCode {
            exit(error.rawValue)
        } catch {
            // argument-parser's own errors: help, version, usage.
            let code = Root.exitCode(for: error)
            let text = Root.fullMessage(for: error)
            if code == .success {
                Output.line(text)
                exit(0)
            }
            // One line, like every other error; `--help` has the rest.
            let first = text.split(separator: "\n").first.map(String.init) ?? text
            guard first.hasPrefix("Error: ") else {
                Output.error(first)
                exit(CLIError.Status.usage)
            }
            let message = first.dropFirst(7)
            // A `validate()` that threw a CLIError (a cross-flag rule) keeps its stable code.
            Output.error(CLIError.hasCode(message) ? "error: \(message)" : "error: usage: \(message) (see --help)")
            exit(CLIError.Status.usage)
        }
    }
}

/// Writing to the terminal. Swift 6 forbids touching C's `stdout` global, and
/// FoundationEssentials (what `batond` links, to stay small) has no FileHandle, so each
/// text goes out with write(2) on the descriptor.
public enum Output {
    public static func line(_ text: String = "") {
        write(text + "\n", to: 1)
    }

    public static func write(_ text: String) {
        write(text, to: 1)
    }

    public static func error(_ text: String) {
        write(text + "\n", to: 2)
    }

    private static func write(_ text: String, to fd: Int32) {
        var text = text
        text.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let n = systemWrite(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return }  // a closed terminal: nothing more to say
                offset += n
            }
        }
    }
}

private func systemWrite(_ fd: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    Glibc.write(fd, bytes, count)
    #else
    Musl.write(fd, bytes, count)
    #endif
}

/// Reading the files an operator names, with errors that say which file and why.
public enum OperatorFiles {
    public static func read(_ path: String, what: String) throws(CLIError) -> Data {
        guard FileManager.default.fileExists(atPath: path) else {
            throw CLIError(.fileNotFound, "\(what) '\(path)' does not exist")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CLIError(.fileUnreadable, "cannot read \(what) '\(path)' (permissions?)")
        }
        return data
    }

    public static func readText(_ path: String, what: String) throws(CLIError) -> String {
        let data = try read(path, what: what)
        guard let text = String(data: data, encoding: .utf8) else {
            throw CLIError(.fileUnreadable, "\(what) '\(path)' is not UTF-8 text")
        }
        return text
    }

    /// Writes through a temporary file and a rename, so a reader never sees half a file.
    /// `mode` applies from the moment the file exists (private keys are never readable
    /// by others, not even briefly).
    public static func write(_ data: Data, to path: String, mode: mode_t = 0o644, overwrite: Bool = true) throws(CLIError) {
        if !overwrite, FileManager.default.fileExists(atPath: path) {
            throw CLIError(.fileExists, "'\(path)' already exists; remove it or choose another name")
        }
        let temporary = path + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else {
            throw CLIError(.writeFailed, "cannot write '\(path)': \(String(cString: strerror(errno)))")
        }
        let ok = data.withUnsafeBytes { buffer -> Bool in
            var offset = 0
            while offset < buffer.count {
                let n = systemWrite(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if n < 0 { if errno == EINTR { continue }; return false }
                offset += n
            }
            return fsync(fd) == 0
        }
        let savedErrno = errno
        close(fd)
        guard ok, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw CLIError(.writeFailed, "cannot write '\(path)': \(String(cString: strerror(ok ? errno : savedErrno)))")
        }
    }
}
