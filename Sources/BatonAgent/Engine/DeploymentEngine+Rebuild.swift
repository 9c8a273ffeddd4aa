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

/// What `batond state rebuild` did.
public struct StateRebuild: Sendable {
    public let app: String
    public let current: String?
    public let previous: String?
    public let lastSerial: UInt64?
    /// Releases on disk, oldest first, and those of them a deployment succeeded with.
    public let releases: [String]
    public let succeeded: [String]
    /// Where each unreadable file went (the original path → its new name).
    public let keptAside: [(from: String, to: String)]
}

extension DeploymentEngine {
    /// Writes a new state for `app` from what the host still holds: the `current` link,
    /// the release directories, the approved manifests and the deployment records.
    /// Unreadable files (the state file, the app's records) are renamed aside, never
    /// deleted. Runs only with the engine's lock held, so never beside `batond run`.
    ///
    /// What cannot be proven is left out on the safe side: a release no succeeded record
    /// names is not held (a return to it needs the full threshold again), and the serial
    /// is the highest any file mentions, unreadable records included, so nothing already
    /// accepted can be replayed. A release directory with no record or approval naming
    /// its artifact stops the rebuild: the next start would delete it.
    public func rebuildState(_ app: String) async throws(AgentError) -> StateRebuild {
        guard Name.isValid(app) else { throw AgentError(.notFound, "'\(app)' is not an app name") }
        let time = now()
        let live = store.currentRelease(app)

        var records: [DeploymentRecord] = []
        var unreadable: [String] = []
        var serials: [(UInt64, String)] = []
        let files = (try? FileManager.default.contentsOfDirectory(atPath: layout.deploymentsDirectory)) ?? []
        for file in files where file.hasSuffix(".json") {
            let id = String(file.dropLast(5))
            guard DeploymentID.app(of: id) == app, let serial = DeploymentID.serial(of: id) else { continue }
            serials.append((serial, id))
            do {
                if let record = try store.loadRecord(id), record.app == app { records.append(record) }
            } catch {
                unreadable.append(id)
            }
        }
        records.sort { $0.serial < $1.serial }

        let onDisk = ((try? FileManager.default.contentsOfDirectory(atPath: layout.releasesDirectory(app))) ?? [])
            .filter { Name.isValid($0) && DurableFiles.isDirectory(layout.releaseDirectory(app, $0)) }
        var releases: [AppState.InstalledRelease] = []
        var unproven: [String] = []
        for name in onDisk {
            let approval = store.loadApproved(app: app, release: name)
            let named = records.filter { $0.release == name }
            guard let digest = approval?.manifest.artifact.sha256 ?? named.last?.artifactSHA256 else {
                unproven.append(name)
                continue
            }
            if let approval { serials.append((approval.record.serial, approval.record.deploymentID)) }
            let succeeded = named.filter { $0.phase == .succeeded }.map { $0.finishedAt ?? $0.updatedAt }.min()
            releases.append(
                AppState.InstalledRelease(
                    name: name, artifactSHA256: digest,
                    installedAt: named.first?.createdAt ?? approval?.record.approvedAt ?? time, succeededAt: succeeded))
        }
        guard unproven.isEmpty else {
            throw AgentError(
                .stateCorrupt,
                "no deployment record or approved manifest names the artifact of \(unproven.sorted().joined(separator: ", ")) in "
                    + "\(layout.releasesDirectory(app)); the next start would delete such a directory, so nothing was changed. "
                    + "Move it out of that directory (keep it if it is evidence) and run the command again")
        }
        releases.sort { ($0.installedAt, $0.name) < ($1.installedAt, $1.name) }

        var state = AppState(app: app)
        state.releases = releases
        for record in records where record.phase == .succeeded {
            state.recordLive(record.release, at: record.finishedAt ?? record.updatedAt, deploymentID: record.id)
        }
        if let live, state.liveHistory.last?.release != live { state.recordLive(live, at: time, deploymentID: nil) }
        state.current = live
        state.previous = state.previousLive(current: live)
        if let (serial, id) = serials.max(by: { $0.0 < $1.0 }) {
            state.lastSerial = serial
            state.lastDeploymentID = records.contains { $0.id == id } || unreadable.contains(id) ? id : nil
            let last = records.first { $0.id == id }
            state.lastPayloadDigest = last?.payloadDigest
            // An unfinished deployment is handed to reconciliation at the next start.
            if let last, !last.phase.isTerminal { state.activeDeploymentID = last.id }
        }
        state.updatedAt = time

        let stamp = RFC3339.format(time)
        let paths = self.layout, store = self.store, rebuilt = state, unreadableIDs = unreadable
        let aside = try await Blocking.files { () throws(AgentError) -> [(from: String, to: String)] in
            var aside: [(from: String, to: String)] = []
            let statePath = paths.appState(app)
            if FileManager.default.fileExists(atPath: statePath) {
                aside.append((statePath, try Self.keepAside(statePath, in: paths.appStateDirectory, stamp: stamp)))
            }
            for id in unreadableIDs {
                // The record's event log goes with its summary: either may be what does not read.
                for path in [paths.deployment(id), paths.deploymentEvents(id)] where DurableFiles.exists(path) {
                    aside.append((path, try Self.keepAside(path, in: paths.deploymentsDirectory, stamp: stamp)))
                }
            }
            try store.writeApp(rebuilt)
            return aside
        }
        logger.notice(
            "app state rebuilt",
            metadata: [
                "baton.app": "\(app)", "baton.current": "\(live ?? "-")", "baton.serial": "\(state.lastSerial.map(String.init) ?? "-")",
                "baton.kept_aside": "\(aside.map(\.to).joined(separator: ","))",
            ])
        return StateRebuild(
            app: app, current: live, previous: state.previous, lastSerial: state.lastSerial, releases: releases.map(\.name),
            succeeded: state.succeededReleases, keptAside: aside)
    }

    /// Renames `path` to `<path>.corrupt-<time>` (a free name), durably. No listing of
    /// state reads such a name, so the file stays as evidence without being read again.
    private nonisolated static func keepAside(_ path: String, in directory: String, stamp: String) throws(AgentError) -> String {
        var target = "\(path).corrupt-\(stamp)"
        var n = 1
        while FileManager.default.fileExists(atPath: target) {
            n += 1
            target = "\(path).corrupt-\(stamp)-\(n)"
        }
        guard rename(path, target) == 0 else { throw AgentError.io("rename \(path) to \(target)") }
        try DurableFiles.syncDirectory(directory)
        return target
    }
}
