import BatonProtocol
import Foundation
import GRDB

/// The release registry in the SQLite store (migration `v6-releases`).
extension SQLiteHistoryStore: ReleaseRegistry {
    /// `serial_counters` holds the last serial handed out per app and environment;
    /// `releases` the registered manifests under their serials (a release name registered
    /// again gets a new serial and a new row, so no approval is ever lost);
    /// `release_approvals` one signature per key and release.
    static func releasesMigration(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE serial_counters (
                app TEXT NOT NULL, environment TEXT NOT NULL, serial INTEGER NOT NULL, PRIMARY KEY (app, environment));
            CREATE TABLE releases (
                app TEXT NOT NULL, environment TEXT NOT NULL, serial INTEGER NOT NULL, release TEXT NOT NULL,
                payload BLOB NOT NULL, payloadSHA256 TEXT NOT NULL, artifactSHA256 TEXT NOT NULL, artifactSize INTEGER NOT NULL,
                artifactURL TEXT, artifactHolder TEXT, artifactPath TEXT, createdBy TEXT NOT NULL, createdAt REAL NOT NULL,
                PRIMARY KEY (app, environment, serial));
            CREATE INDEX releases_by_name ON releases(app, release);
            CREATE INDEX releases_by_artifact ON releases(artifactSHA256);
            CREATE TABLE release_approvals (
                app TEXT NOT NULL, environment TEXT NOT NULL, serial INTEGER NOT NULL, keyid TEXT NOT NULL,
                signature BLOB NOT NULL, approvedBy TEXT NOT NULL, approvedAt REAL NOT NULL,
                PRIMARY KEY (app, environment, serial, keyid),
                FOREIGN KEY (app, environment, serial) REFERENCES releases(app, environment, serial) ON DELETE CASCADE);
            """)
    }

    public func nextSerial(app: String, environment: String, above floor: UInt64) throws(ControllerError) -> UInt64 {
        try write { db in
            // One statement: the counter moves past both its last value and the floor.
            let serial = try Int64.fetchOne(
                db, sql: """
                    INSERT INTO serial_counters (app, environment, serial) VALUES (?, ?, ?)
                    ON CONFLICT (app, environment) DO UPDATE SET serial = MAX(serial + 1, excluded.serial)
                    RETURNING serial
                    """, arguments: [app, environment, Int64(floor) + 1])
            return UInt64(serial ?? Int64(floor) + 1)
        }
    }

    public func noteSerial(app: String, environment: String, _ serial: UInt64) throws(ControllerError) {
        try write { db in
            try db.execute(
                sql: """
                    INSERT INTO serial_counters (app, environment, serial) VALUES (?, ?, ?)
                    ON CONFLICT (app, environment) DO UPDATE SET serial = MAX(serial, excluded.serial)
                    """, arguments: [app, environment, Int64(serial)])
        }
    }

    public func registerRelease(_ release: RegisteredRelease) throws(ControllerError) {
        let existing: String? = try write { db in
            try db.execute(
                sql: """
                    INSERT INTO releases (app, environment, serial, release, payload, payloadSHA256, artifactSHA256, artifactSize,
                        artifactURL, artifactHolder, artifactPath, createdBy, createdAt)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
                    """,
                arguments: [release.app, release.environment, Int64(release.serial), release.release, Data(release.payload),
                            release.payloadSHA256, release.artifactSHA256, Int64(release.artifactSize), release.artifactURL,
                            release.artifactHolder, release.artifactPath, release.createdBy, release.createdAt.timeIntervalSince1970])
            if db.changesCount == 1 { return nil }
            return try String.fetchOne(
                db, sql: "SELECT payloadSHA256 FROM releases WHERE app = ? AND environment = ? AND serial = ?",
                arguments: [release.app, release.environment, Int64(release.serial)])
        }
        if let existing, existing != release.payloadSHA256 { throw Self.conflict(release) }
    }

    static func conflict(_ release: RegisteredRelease) -> ControllerError {
        ControllerError(
            .releaseConflict,
            "serial \(release.serial) of \(release.app) in \(release.environment) is already registered with another manifest; create the release again to get a new serial")
    }

    public func registeredRelease(app: String, release: String, environment: String?) throws(ControllerError) -> [RegisteredRelease] {
        try read { db in
            try Row.fetchAll(
                db, sql: """
                    SELECT * FROM releases WHERE app = ? AND release = ? AND (? IS NULL OR environment = ?)
                    ORDER BY serial DESC, environment
                    """, arguments: [app, release, environment, environment]).map(Self.registered)
        }
    }

    public func registeredReleases(app: String?, limit: Int) throws(ControllerError) -> [RegisteredRelease] {
        try read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM releases WHERE (? IS NULL OR app = ?) ORDER BY createdAt DESC, serial DESC LIMIT ?",
                arguments: [app, app, limit]).map(Self.registered)
        }
    }

    public func registeredReleases(artifactSHA256: String) throws(ControllerError) -> [RegisteredRelease] {
        try read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM releases WHERE artifactSHA256 = ? ORDER BY createdAt DESC, serial DESC",
                arguments: [artifactSHA256]).map(Self.registered)
        }
    }

    @discardableResult
    public func addApproval(_ approval: ReleaseApproval) throws(ControllerError) -> Bool {
        try write { db in
            try db.execute(
                sql: """
                    INSERT INTO release_approvals (app, environment, serial, keyid, signature, approvedBy, approvedAt)
                    VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
                    """,
                arguments: [approval.app, approval.environment, Int64(approval.serial), approval.keyid, Data(approval.signature),
                            approval.approvedBy, approval.approvedAt.timeIntervalSince1970])
            return db.changesCount == 1
        }
    }

    public func approvals(app: String, environment: String, serial: UInt64) throws(ControllerError) -> [ReleaseApproval] {
        try read { db in
            try Row.fetchAll(
                db, sql: """
                    SELECT * FROM release_approvals WHERE app = ? AND environment = ? AND serial = ? ORDER BY approvedAt, keyid
                    """, arguments: [app, environment, Int64(serial)]).map { row in
                ReleaseApproval(
                    app: row["app"], environment: row["environment"], serial: UInt64(row["serial"] as Int64), keyid: row["keyid"],
                    signature: Array(row["signature"] as Data), approvedBy: row["approvedBy"],
                    approvedAt: Date(timeIntervalSince1970: row["approvedAt"]))
            }
        }
    }

    static func registered(_ row: Row) -> RegisteredRelease {
        let payload: Data = row["payload"]
        var release = RegisteredRelease(
            app: row["app"], environment: row["environment"], release: row["release"], serial: UInt64(row["serial"] as Int64),
            payload: Array(payload), artifactSHA256: row["artifactSHA256"], artifactSize: UInt64(row["artifactSize"] as Int64),
            createdBy: row["createdBy"], createdAt: Date(timeIntervalSince1970: row["createdAt"]))
        release.payloadSHA256 = row["payloadSHA256"]
        release.artifactURL = row["artifactURL"]
        release.artifactHolder = row["artifactHolder"]
        release.artifactPath = row["artifactPath"]
        return release
    }
}
