import BatonProtocol
import Glibc

/// Why an archive was refused or could not be unpacked.
///
/// Compare by `code`: codes are stable and are what the agent reports to operators.
/// `entry` names the archive member that was refused (as the archive spells it, after
/// pax and GNU long names are applied) when the failure concerns one member.
public struct ExtractionError: CodedError, Equatable {
    /// A stable identifier per refusal or failure.
    public enum Code: String, Sendable, Hashable, CaseIterable {
        /// A member name starts with `/`.
        case absolutePath = "absolute_path"
        /// A member name has a `..` component.
        case pathTraversal = "path_traversal"
        /// A member name is empty, or names the archive root for something that is not a directory.
        case emptyName = "empty_name"
        /// A member name or link target contains a NUL byte.
        case nulInName = "nul_in_name"
        /// Two members have the same (normalised) name.
        case duplicateEntry = "duplicate_entry"
        /// A name, one of its components, or a link target is longer than the limit.
        case nameTooLong = "name_too_long"
        /// A name has more components than the limit.
        case pathTooDeep = "path_too_deep"
        /// The archive has more members than the limit.
        case tooManyEntries = "too_many_entries"
        /// A file, or all files together, are larger than the limit.
        case sizeLimitExceeded = "size_limit_exceeded"
        /// A symbolic link has an absolute target.
        case symlinkAbsolute = "symlink_absolute"
        /// A symbolic link's target resolves outside the release (or is empty or loops).
        case symlinkEscape = "symlink_escape"
        /// A hard link does not point to an earlier regular file of the same archive.
        case hardlinkInvalid = "hardlink_invalid"
        /// A character or block device member.
        case deviceEntry = "device_entry"
        /// A FIFO member.
        case fifoEntry = "fifo_entry"
        /// A member type this extractor does not support (sparse files, volume labels, ...).
        case unsupportedEntry = "unsupported_entry"
        /// A member's parent path goes through a symbolic link or a non-directory.
        case parentNotDirectory = "parent_not_directory"
        /// A tar header with a bad checksum or an unreadable field.
        case corruptHeader = "corrupt_header"
        /// A malformed pax extended header.
        case badPaxHeader = "bad_pax_header"
        /// The archive (or its gzip stream) ends early.
        case truncatedArchive = "truncated_archive"
        /// The gzip stream is not valid (bad header, bad data, CRC mismatch).
        case gzipCorrupt = "gzip_corrupt"
        /// The file system ran out of space or quota while unpacking.
        case diskFull = "disk_full"
        /// Any other I/O failure.
        case ioError = "io_error"
        /// The staging directory already holds something.
        case stagingNotEmpty = "staging_not_empty"
    }

    /// The stable code.
    public var code: Code
    /// The member concerned, if any.
    public var entry: String?
    /// What happened and what to do about it.
    public var message: String

    public init(_ code: Code, entry: String? = nil, _ message: String) {
        self.code = code
        self.entry = entry
        self.message = message
    }

    public var reportedCode: String { code.rawValue }

    /// `"<code>: <message>"`.
    public var description: String { "\(code.rawValue): \(message)" }
}

extension ExtractionError {
    /// A refusal of one member: the message names it and says how to fix the artifact.
    static func refused(_ code: Code, _ name: [UInt8], _ reason: String) -> ExtractionError {
        let shown = displayName(name)
        return ExtractionError(
            code, entry: shown,
            "archive entry '\(shown)' \(reason); rebuild the artifact without it (refused by the extraction policy)")
    }

    /// A failed system call: ENOSPC and EDQUOT become `disk_full`, the rest `io_error`.
    static func system(_ operation: String, _ name: [UInt8]?, errno code: Int32) -> ExtractionError {
        let shown = name.map(displayName)
        let what = shown.map { "\(operation) '\($0)'" } ?? operation
        if code == ENOSPC || code == EDQUOT {
            return ExtractionError(
                .diskFull, entry: shown,
                "no space left while unpacking (\(what): \(errnoDescription(code))); free space or raise the quota on the data directory and deploy again"
            )
        }
        return ExtractionError(.ioError, entry: shown, "\(what) failed: \(errnoDescription(code))")
    }

    /// A name as shown in messages: invalid UTF-8 replaced, NUL shown as `\0`, long names cut.
    static func displayName(_ name: [UInt8]) -> String {
        var shown = String(decoding: name, as: UTF8.self).replacingNUL()
        if shown.utf8.count > 300 { shown = String(shown.prefix(120)) + "…(\(name.count) bytes)" }
        return shown
    }
}

extension String {
    fileprivate func replacingNUL() -> String {
        guard contains("\0") else { return self }
        return split(separator: "\0", omittingEmptySubsequences: false).joined(separator: "\\0")
    }
}

func errnoDescription(_ code: Int32) -> String {
    guard let text = strerror(code) else { return "errno \(code)" }
    return "\(String(cString: text)) (errno \(code))"
}
