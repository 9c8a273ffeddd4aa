import Foundation

/// The system `openssl` command, the independent referee for the certificates, keys and
/// CSRs Baton writes.
public enum OpenSSL {
    public static let path = ["/usr/bin/openssl", "/usr/local/bin/openssl", "/opt/homebrew/bin/openssl"]
        .first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/bin/openssl"

    /// Runs `openssl <arguments>`; stdout and stderr captured.
    @discardableResult
    public static func run(_ arguments: [String], currentDirectory: String? = nil) throws -> ProcessResult {
        try ProcessRunner.run(path, arguments, currentDirectory: currentDirectory)
    }

    /// `openssl x509 -noout -text -in <path>`: the human-readable dump.
    public static func text(ofCertificate path: String) throws -> String {
        try run(["x509", "-noout", "-text", "-in", path]).stdout
    }

    /// `openssl verify -CAfile <ca> <certificate>`, plus extra flags such as `-purpose sslserver`.
    public static func verify(_ certificate: String, caFile: String, _ extra: [String] = []) throws -> ProcessResult {
        try run(["verify", "-CAfile", caFile] + extra + [certificate])
    }
}

/// The permission bits of a file (e.g. `0o600`), or nil if it does not exist.
public func filePermissions(_ path: String) -> Int? {
    guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
        let mode = attributes[.posixPermissions] as? NSNumber
    else { return nil }
    return mode.intValue & 0o7777
}

/// The text of a file, or "" if it cannot be read.
public func fileText(_ path: String) -> String {
    (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
}
