import BatonProtocol
import Foundation
import PostgresNIO

/// The release registry in the shared store (migration 3, `PostgresMigrations`).
extension PostgresHistoryStore: ReleaseRegistry {
    static let releasesMigration: [String] = [
        "CREATE TABLE serial_counters (app text NOT NULL, environment text NOT NULL, serial bigint NOT NULL, PRIMARY KEY (app, environment))",
        """
        CREATE TABLE releases (
            app text NOT NULL, environment text NOT NULL, serial bigint NOT NULL, release text NOT NULL, payload bytea NOT NULL,
            payload_sha256 text NOT NULL, artifact_sha256 text NOT NULL, artifact_size bigint NOT NULL, artifact_url text,
            artifact_holder text, artifact_path text, created_by text NOT NULL, created_at double precision NOT NULL,
            PRIMARY KEY (app, environment, serial))
        """,
        "CREATE INDEX releases_by_name ON releases (app, release)",
        "CREATE INDEX releases_by_artifact ON releases (artifact_sha256)",
        """
        CREATE TABLE release_approvals (
            app text NOT NULL, environment text NOT NULL, serial bigint NOT NULL, keyid text NOT NULL, signature bytea NOT NULL,
            approved_by text NOT NULL, approved_at double precision NOT NULL, PRIMARY KEY (app, environment, serial, keyid),
            FOREIGN KEY (app, environment, serial) REFERENCES releases (app, environment, serial) ON DELETE CASCADE)
        """,
    ]

    public func nextSerial(app: String, environment: String, above floor: UInt64) throws(ControllerError) -> UInt64 {
        try guarded {
            // One statement: the row lock of the counter serialises concurrent callers, and
            // each sees the value the one before it wrote.
            let serial = try sql.run("""
                INSERT INTO serial_counters (app, environment, serial) VALUES (\(app), \(environment), \(Int64(floor) + 1))
                ON CONFLICT (app, environment) DO UPDATE SET serial = GREATEST(serial_counters.serial + 1, EXCLUDED.serial)
                RETURNING serial
                """).rows.first.map { try $0.decode(Int64.self) }
            return UInt64(serial ?? Int64(floor) + 1)
        }
    }

    public func noteSerial(app: String, environment: String, _ serial: UInt64) throws(ControllerError) {
        try guarded {
            try sql.run("""
                INSERT INTO serial_counters (app, environment, serial) VALUES (\(app), \(environment), \(Int64(serial)))
                ON CONFLICT (app, environment) DO UPDATE SET serial = GREATEST(serial_counters.serial, EXCLUDED.serial)
                """)
        }
    }

    public func registerRelease(_ release: RegisteredRelease) throws(ControllerError) {
        let existing: String? = try guarded {
            try sql.transaction { sql in
                let inserted = try sql.run("""
                    INSERT INTO releases (app, environment, serial, release, payload, payload_sha256, artifact_sha256, artifact_size,
                        artifact_url, artifact_holder, artifact_path, created_by, created_at)
                    VALUES (\(release.app), \(release.environment), \(Int64(release.serial)), \(release.release), \(Data(release.payload)),
                            \(release.payloadSHA256), \(release.artifactSHA256), \(Int64(release.artifactSize)), \(release.artifactURL),
                            \(release.artifactHolder), \(release.artifactPath), \(release.createdBy), \(release.createdAt.timeIntervalSince1970))
                    ON CONFLICT DO NOTHING
                    """)
                if inserted.metadata.rows == 1 { return nil }
                return try sql.run("""
                    SELECT payload_sha256 FROM releases
                    WHERE app = \(release.app) AND environment = \(release.environment) AND serial = \(Int64(release.serial))
                    """).rows.first.map { try $0.decode(String.self) }
            }
        }
        if let existing, existing != release.payloadSHA256 { throw SQLiteHistoryStore.conflict(release) }
    }

    public func registeredRelease(app: String, release: String, environment: String?) throws(ControllerError) -> [RegisteredRelease] {
        try guarded {
            try sql.run("""
                SELECT * FROM releases WHERE app = \(app) AND release = \(release) AND (\(environment)::text IS NULL OR environment = \(environment))
                ORDER BY serial DESC, environment
                """).rows.map(Self.registered)
        }
    }

    public func registeredReleases(app: String?, limit: Int) throws(ControllerError) -> [RegisteredRelease] {
        try guarded {
            try sql.run("""
                SELECT * FROM releases WHERE (\(app)::text IS NULL OR app = \(app)) ORDER BY created_at DESC, serial DESC LIMIT \(limit)
                """).rows.map(Self.registered)
        }
    }

    public func registeredReleases(artifactSHA256: String) throws(ControllerError) -> [RegisteredRelease] {
        try guarded {
            try sql.run("SELECT * FROM releases WHERE artifact_sha256 = \(artifactSHA256) ORDER BY created_at DESC, serial DESC")
                .rows.map(Self.registered)
        }
    }

    @discardableResult
    public func addApproval(_ approval: ReleaseApproval) throws(ControllerError) -> Bool {
        try guarded {
            try sql.run("""
                INSERT INTO release_approvals (app, environment, serial, keyid, signature, approved_by, approved_at)
                VALUES (\(approval.app), \(approval.environment), \(Int64(approval.serial)), \(approval.keyid), \(Data(approval.signature)),
                        \(approval.approvedBy), \(approval.approvedAt.timeIntervalSince1970))
                ON CONFLICT DO NOTHING
                """).metadata.rows == 1
        }
    }

    public func approvals(app: String, environment: String, serial: UInt64) throws(ControllerError) -> [ReleaseApproval] {
        try guarded {
            try sql.run("""
                SELECT app, environment, serial, keyid, signature, approved_by, approved_at FROM release_approvals
                WHERE app = \(app) AND environment = \(environment) AND serial = \(Int64(serial)) ORDER BY approved_at, keyid
                """).rows.map { row in
                let (app, environment, serial, keyid, signature, by, at) = try row.decode((String, String, Int64, String, Data, String, Double).self)
                return ReleaseApproval(
                    app: app, environment: environment, serial: UInt64(serial), keyid: keyid, signature: Array(signature),
                    approvedBy: by, approvedAt: Date(timeIntervalSince1970: at))
            }
        }
    }

    static func registered(_ row: PostgresRow) throws -> RegisteredRelease {
        let row = row.makeRandomAccess()
        var release = RegisteredRelease(
            app: try row["app"].decode(String.self), environment: try row["environment"].decode(String.self),
            release: try row["release"].decode(String.self), serial: UInt64(try row["serial"].decode(Int64.self)),
            payload: Array(try row["payload"].decode(Data.self)), artifactSHA256: try row["artifact_sha256"].decode(String.self),
            artifactSize: UInt64(try row["artifact_size"].decode(Int64.self)), createdBy: try row["created_by"].decode(String.self),
            createdAt: Date(timeIntervalSince1970: try row["created_at"].decode(Double.self)))
        release.payloadSHA256 = try row["payload_sha256"].decode(String.self)
        release.artifactURL = try row["artifact_url"].decode(String?.self)
        release.artifactHolder = try row["artifact_holder"].decode(String?.self)
        release.artifactPath = try row["artifact_path"].decode(String?.self)
        return release
    }
}
