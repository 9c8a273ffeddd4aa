import BatonProtocol
import Foundation

/// Releases, their approvals and the serial counters, kept in the history store so that
/// every controller sharing it (a team's PostgreSQL database, or one machine's SQLite
/// file) sees the same ones: `baton release create` registers an unsigned manifest on one
/// machine, `baton approve` adds signatures from any other, and `baton rollout APP@RELEASE`
/// assembles the envelope from the store wherever it runs (docs/history-store.md).
///
/// Both stores conform (`SQLiteHistoryStore+Releases.swift`, `PostgresHistoryStore+Releases.swift`).
public protocol ReleaseRegistry: Sendable {
    /// The next serial for `app` in `environment`: above every serial this counter handed
    /// out and above `floor` (what the agents and the local state report), in one statement,
    /// so two controllers asking at once never get the same one.
    func nextSerial(app: String, environment: String, above floor: UInt64) throws(ControllerError) -> UInt64
    /// Raises the counter to at least `serial` (a serial issued elsewhere: a revert's).
    func noteSerial(app: String, environment: String, _ serial: UInt64) throws(ControllerError)
    /// Registers a release under its serial. Registering the same serial again with the
    /// same payload changes nothing; with another payload it is refused (`release_conflict`).
    func registerRelease(_ release: RegisteredRelease) throws(ControllerError)
    /// The registrations of `release` of `app` (in `environment`, if given), newest serial first.
    func registeredRelease(app: String, release: String, environment: String?) throws(ControllerError) -> [RegisteredRelease]
    /// Newest first.
    func registeredReleases(app: String?, limit: Int) throws(ControllerError) -> [RegisteredRelease]
    /// Registrations whose artifact has this digest (where its bytes are), newest first.
    func registeredReleases(artifactSHA256: String) throws(ControllerError) -> [RegisteredRelease]
    /// Adds a signature over a registered release's payload. False when that key had
    /// already signed it (nothing added).
    @discardableResult
    func addApproval(_ approval: ReleaseApproval) throws(ControllerError) -> Bool
    /// Oldest first.
    func approvals(app: String, environment: String, serial: UInt64) throws(ControllerError) -> [ReleaseApproval]
}

/// An unsigned manifest registered in the store, and where its artifact's bytes are.
public struct RegisteredRelease: Codable, Sendable, Equatable {
    public var app: String
    public var environment: String
    public var release: String
    public var serial: UInt64
    /// The exact manifest bytes approvers sign (the DSSE payload).
    public var payload: [UInt8]
    public var payloadSHA256: String
    public var artifactSHA256: String
    public var artifactSize: UInt64
    /// The manifest's `artifact.url`: agents can fetch the bytes themselves.
    public var artifactURL: String?
    /// The controller whose state directory holds the bytes (`user@host`), and the path there.
    public var artifactHolder: String?
    public var artifactPath: String?
    public var createdBy: String
    public var createdAt: Date

    public init(manifest: Manifest, payload: [UInt8], artifactHolder: String?, artifactPath: String?, createdBy: String, createdAt: Date) {
        app = manifest.app
        environment = manifest.environment
        release = manifest.release
        serial = manifest.serial
        self.payload = payload
        payloadSHA256 = Digest.sha256Hex(payload)
        artifactSHA256 = manifest.artifact.sha256
        artifactSize = manifest.artifact.size
        artifactURL = manifest.artifact.url
        self.artifactHolder = artifactHolder
        self.artifactPath = artifactPath
        self.createdBy = createdBy
        self.createdAt = createdAt
    }

    /// A row as a store reads it back (the optional fields are set after).
    init(app: String, environment: String, release: String, serial: UInt64, payload: [UInt8], artifactSHA256: String,
         artifactSize: UInt64, createdBy: String, createdAt: Date) {
        self.app = app
        self.environment = environment
        self.release = release
        self.serial = serial
        self.payload = payload
        payloadSHA256 = Digest.sha256Hex(payload)
        self.artifactSHA256 = artifactSHA256
        self.artifactSize = artifactSize
        self.createdBy = createdBy
        self.createdAt = createdAt
    }

    /// `web@v2`, as commands take it.
    public var reference: String { "\(app)@\(release)" }

    /// Where the bytes are, for people.
    public var artifactLocation: String {
        if let artifactURL { return artifactURL }
        if let artifactHolder, let artifactPath { return "\(artifactHolder):\(artifactPath)" }
        return "unknown"
    }

    public func manifest() throws(ControllerError) -> Manifest {
        do { return try Manifest.parse(payload: payload) } catch {
            throw ControllerError(.stateError, "the registered manifest of \(reference) (serial \(serial)) cannot be read: \(error.message)")
        }
    }
}

/// One approver's signature over a registered release's payload.
public struct ReleaseApproval: Codable, Sendable, Equatable {
    public var app: String
    public var environment: String
    public var serial: UInt64
    public var keyid: String
    public var signature: [UInt8]
    /// Who ran `baton approve` (`user@host`).
    public var approvedBy: String
    public var approvedAt: Date

    public init(app: String, environment: String, serial: UInt64, keyid: String, signature: [UInt8], approvedBy: String, approvedAt: Date) {
        self.app = app
        self.environment = environment
        self.serial = serial
        self.keyid = keyid
        self.signature = signature
        self.approvedBy = approvedBy
        self.approvedAt = approvedAt
    }
}
