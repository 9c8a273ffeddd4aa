#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension Manifest {
    /// The fields a return may change: a return is the approved manifest sent again, with a
    /// new serial (replay protection), a new validity window, and a reason in `notes`.
    public static let fieldsAReturnMayChange = ["serial", "issuedAt", "expiresAt", "notes"]

    /// The names of the fields in which this manifest differs from `approved`, ignoring
    /// `fieldsAReturnMayChange`. Empty: this manifest is a return to `approved`'s release
    /// and runs exactly what its approvers signed.
    public func returnDifferences(from approved: Manifest) -> [String] {
        var differences: [String] = []
        func compare<T: Equatable>(_ name: String, _ mine: T, _ theirs: T) {
            if mine != theirs { differences.append(name) }
        }
        compare("app", app, approved.app)
        compare("release", release, approved.release)
        compare("environment", environment, approved.environment)
        compare("targets", targets, approved.targets)
        compare("artifact.sha256", artifact.sha256, approved.artifact.sha256)
        compare("artifact.size", artifact.size, approved.artifact.size)
        compare("artifact.format", artifact.format, approved.artifact.format)
        compare("artifact.url", artifact.url, approved.artifact.url)
        compare("hooks.prepare", hooks?.prepare, approved.hooks?.prepare)
        compare("hooks.activate", hooks?.activate, approved.hooks?.activate)
        compare("health", health, approved.health)
        compare("bake", bake, approved.bake)
        compare("keep", keep, approved.keep)
        compare("owner", owner, approved.owner)
        compare("source", source, approved.source)
        return differences
    }

    /// `approved` as a return with `serial`, a validity window and a reason: the manifest a
    /// controller signs to send a host back to a release it holds.
    public static func returning(
        to approved: Manifest, serial: UInt64, issuedAt: Date, expiresAt: Date, notes: String?
    ) -> Manifest {
        var manifest = approved
        manifest.serial = serial
        manifest.issuedAt = issuedAt
        manifest.expiresAt = expiresAt
        manifest.notes = notes
        return manifest
    }
}
