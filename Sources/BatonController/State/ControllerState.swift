import BatonProtocol
import Crypto
import Foundation

/// The controller's state directory: artifacts kept content-addressed, the last serial
/// it used per app, the unsigned manifests it wrote, and the history store
/// (`history.sqlite`). Written through temporary files and renames, so a crash leaves
/// whole files.
public struct ControllerState: Sendable {
    public let root: String

    public init(root: String) { self.root = root }

    public func prepare() throws(ControllerError) {
        for directory in [root, "\(root)/artifacts/sha256", "\(root)/apps", "\(root)/releases"] {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw ControllerError(.stateError, "cannot create the state directory '\(directory)': \(error.localizedDescription); set --state-dir or BATON_STATE_DIR")
            }
        }
    }

    // MARK: Artifacts

    public func artifactPath(_ sha256: String) -> String { "\(root)/artifacts/sha256/\(sha256)" }

    public func hasArtifact(_ sha256: String) -> Bool { FileManager.default.fileExists(atPath: artifactPath(sha256)) }

    /// Hashes `file` while copying it into the store; returns its reference. Keeping our
    /// own copy means a later revert or resume never depends on the operator's file.
    public func storeArtifact(_ file: String, format: ArtifactFormat? = nil) throws(ControllerError) -> ArtifactReference {
        try prepare()
        let temporary = "\(root)/artifacts/.incoming-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        guard let input = FileHandle(forReadingAtPath: file) else {
            throw ControllerError(.artifactMissing, "cannot read the artifact '\(file)' (does it exist?)")
        }
        defer { try? input.close() }
        guard FileManager.default.createFile(atPath: temporary, contents: nil, attributes: [.posixPermissions: 0o600]),
            let output = FileHandle(forWritingAtPath: temporary)
        else {
            throw ControllerError(.stateError, "cannot write into \(root)/artifacts")
        }
        var hasher = SHA256()
        var size: UInt64 = 0
        var head: [UInt8] = []
        do {
            while let chunk = try input.read(upToCount: 1 << 20), !chunk.isEmpty {
                if head.count < 2 { head.append(contentsOf: chunk.prefix(2 - head.count)) }
                hasher.update(data: chunk)
                try output.write(contentsOf: chunk)
                size += UInt64(chunk.count)
            }
            try output.synchronize()
            try output.close()
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw ControllerError(.stateError, "copying the artifact '\(file)' failed: \(error.localizedDescription)")
        }
        let digest = hasher.finalize().map { String(format: "%02x", $0) }.joined()
        if rename(temporary, artifactPath(digest)) != 0 {
            try? FileManager.default.removeItem(atPath: temporary)
            throw ControllerError(.stateError, "cannot store the artifact: \(String(cString: strerror(errno)))")
        }
        guard size > 0 else { throw ControllerError(.artifactMismatch, "the artifact '\(file)' is empty") }
        let detected: ArtifactFormat = head == [0x1F, 0x8B] ? .tarGz : .tar
        return ArtifactReference(sha256: digest, size: size, format: format ?? detected)
    }

    /// Hashes a file without keeping it (to compare against a manifest).
    public static func digest(of file: String) throws(ControllerError) -> (sha256: String, size: UInt64) {
        guard let input = FileHandle(forReadingAtPath: file) else {
            throw ControllerError(.artifactMissing, "cannot read the artifact '\(file)' (does it exist?)")
        }
        defer { try? input.close() }
        var hasher = SHA256()
        var size: UInt64 = 0
        do {
            while let chunk = try input.read(upToCount: 1 << 20), !chunk.isEmpty {
                hasher.update(data: chunk)
                size += UInt64(chunk.count)
            }
        } catch {
            throw ControllerError(.artifactMissing, "reading '\(file)' failed: \(error.localizedDescription)")
        }
        return (hasher.finalize().map { String(format: "%02x", $0) }.joined(), size)
    }

    // MARK: Serials

    struct AppRecord: Codable { var lastSerial: UInt64 }

    /// The highest serial this controller has used for `app` (0 if none).
    public func lastSerial(app: String) -> UInt64 {
        guard let data = FileManager.default.contents(atPath: "\(root)/apps/\(app).json"),
            let record = try? BatonJSON.decode(AppRecord.self, from: data)
        else { return 0 }
        return record.lastSerial
    }

    /// Remembers `serial` unless a higher one is already recorded.
    public func recordSerial(app: String, _ serial: UInt64) throws(ControllerError) {
        guard serial > lastSerial(app: app) else { return }
        try write(try encode(AppRecord(lastSerial: serial)), to: "\(root)/apps/\(app).json")
    }

    // MARK: Manifests and rollouts

    public func saveManifest(_ manifest: Manifest) throws(ControllerError) {
        try write(try encode(manifest, pretty: true), to: "\(root)/releases/\(manifest.app)/\(manifest.release).manifest.json")
    }

    private func encode<T: Encodable>(_ value: T, pretty: Bool = false) throws(ControllerError) -> Data {
        do { return try BatonJSON.encode(value, pretty: pretty) } catch {
            throw ControllerError(.stateError, "cannot encode \(T.self): \(error)")
        }
    }

    private func write(_ data: Data, to path: String) throws(ControllerError) {
        let directory = (path as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let temporary = path + ".tmp-\(getpid())"
            try data.write(to: URL(fileURLWithPath: temporary))
            guard rename(temporary, path) == 0 else {
                throw CocoaError(.fileWriteUnknown)
            }
        } catch {
            throw ControllerError(.stateError, "cannot write '\(path)': \(error.localizedDescription)")
        }
    }
}
