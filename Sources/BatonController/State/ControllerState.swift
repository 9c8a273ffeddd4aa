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
    /// own copy means a later revert or resume never depends on the operator's file. The
    /// digest is of the bytes written, read once: a file changed during the copy cannot
    /// leave a stored copy that differs from its name.
    public func storeArtifact(_ file: String, format: ArtifactFormat? = nil) throws(ControllerError) -> ArtifactReference {
        try prepare()
        let temporary = "\(root)/artifacts/.incoming-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let output = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard output >= 0 else {
            throw ControllerError(.stateError, "cannot write into \(root)/artifacts: \(ArtifactFileReading.describe(errno))")
        }
        var hasher = SHA256()
        var head: [UInt8] = []
        let size: UInt64
        do throws(ArtifactFileReading.Failure) {
            size = try ArtifactFileReading.forEachPiece(of: file) { piece in
                if head.count < 2 { head.append(contentsOf: piece.prefix(2 - head.count)) }
                hasher.update(bufferPointer: piece)
                try ArtifactFileReading.writeAll(output, piece)
            }
            guard fsync(output) == 0 else { throw ArtifactFileReading.Failure.consumer(POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)) }
            close(output)
        } catch {
            close(output)
            unlink(temporary)
            switch error {
            case .cannotOpen(let code):
                throw ControllerError(.artifactMissing, "cannot read the artifact '\(file)': \(ArtifactFileReading.describe(code))")
            case .read(let code):
                throw ControllerError(.stateError, "copying the artifact '\(file)' failed: \(ArtifactFileReading.describe(code))")
            case .consumer(let cause):
                throw ControllerError(.stateError, "copying the artifact '\(file)' into \(root)/artifacts failed: \(cause.localizedDescription)")
            }
        }
        guard size > 0 else {
            unlink(temporary)
            throw ControllerError(.artifactMismatch, "the artifact '\(file)' is empty")
        }
        let digest = Digest.hex(hasher.finalize())
        if rename(temporary, artifactPath(digest)) != 0 {
            unlink(temporary)
            throw ControllerError(.stateError, "cannot store the artifact: \(ArtifactFileReading.describe(errno))")
        }
        let detected: ArtifactFormat = head == [0x1F, 0x8B] ? .tarGz : .tar
        return ArtifactReference(sha256: digest, size: size, format: format ?? detected)
    }

    /// Hashes a file without keeping it (to compare against a manifest).
    public static func digest(of file: String) throws(ControllerError) -> (sha256: String, size: UInt64) {
        var hasher = SHA256()
        let size: UInt64
        do throws(ArtifactFileReading.Failure) {
            size = try ArtifactFileReading.forEachPiece(of: file) { piece in hasher.update(bufferPointer: piece) }
        } catch {
            switch error {
            case .cannotOpen(let code): throw ControllerError(.artifactMissing, "cannot read the artifact '\(file)': \(ArtifactFileReading.describe(code))")
            case .read(let code): throw ControllerError(.artifactMissing, "reading '\(file)' failed: \(ArtifactFileReading.describe(code))")
            case .consumer(let cause): throw ControllerError(.artifactMissing, "reading '\(file)' failed: \(cause)")
            }
        }
        return (Digest.hex(hasher.finalize()), size)
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
