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

/// Reads and writes the agent's state files. Every write is atomic and durable
/// (`DurableFiles.write`), so a reader after a crash sees either the old or the new
/// version of a file, never a mix.
struct StateStore: Sendable {
    let layout: DataLayout

    /// The app's state; a fresh one for an app never seen. A file that is there but does
    /// not read as this app's state, or no file while `current` names a release, is
    /// `state_corrupt`: answering with a fresh state would forget the serials consumed and
    /// the releases held, and the next write would destroy the evidence.
    func loadApp(_ app: String) throws(AgentError) -> AppState {
        let path = layout.appState(app)
        guard let data = FileManager.default.contents(atPath: path) else {
            if let live = currentRelease(app) {
                throw Self.corruptState(app, path: path, reason: "the file is missing", live: live)
            }
            return AppState(app: app)
        }
        let state: AppState
        do {
            state = try BatonJSON.decode(AppState.self, from: data)
        } catch {
            throw Self.corruptState(app, path: path, reason: Self.reason(data, error), live: currentRelease(app))
        }
        guard state.app == app else {
            throw Self.corruptState(app, path: path, reason: "it describes app '\(state.app)'", live: currentRelease(app))
        }
        return state
    }

    /// Writes the app's state durably, on the blocking pool.
    func saveApp(_ state: AppState) async throws(AgentError) {
        try await Blocking.files { () throws(AgentError) in try writeApp(state) }
    }

    /// `saveApp` for code already running on the blocking pool.
    func writeApp(_ state: AppState) throws(AgentError) {
        try DurableFiles.write(encode(state), to: layout.appState(state.app))
    }

    /// Every app the data directory knows of: those with a state file, and those whose
    /// `current` link exists (so that a lost state file is reported, not ignored).
    func apps() -> [String] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: layout.appStateDirectory)) ?? []
        var names = Set(files.filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }.map { String($0.dropLast(5)) })
        let directories = (try? FileManager.default.contentsOfDirectory(atPath: layout.appsDirectory)) ?? []
        for name in directories where Name.isValid(name) && DurableFiles.readSymlink(layout.currentLink(name)) != nil {
            names.insert(name)
        }
        return names.sorted()
    }

    /// The release `current` names, read from the symlink itself.
    func currentRelease(_ app: String) -> String? {
        guard let target = DurableFiles.readSymlink(layout.currentLink(app)) else { return nil }
        return target.hasPrefix("releases/") ? String(target.dropFirst("releases/".count)) : nil
    }

    /// A deployment record; nil when there is none. A record that is there but unreadable
    /// is `state_corrupt`, never "no such deployment".
    func loadRecord(_ id: String) throws(AgentError) -> DeploymentRecord? {
        try loadStoredRecord(id)?.record
    }

    /// A record as its summary and the rest of its event log make it, and how many
    /// complete lines the log holds (where the engine's next change goes). A torn last
    /// line (a crash in the middle of an append) is ignored; a complete line that does
    /// not read is `state_corrupt`, like a summary that does not.
    func loadStoredRecord(_ id: String) throws(AgentError) -> (record: DeploymentRecord, eventLogLines: Int)? {
        guard DeploymentID.isValid(id) else { return nil }
        let path = layout.deployment(id)
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        let summary: RecordSummary
        do {
            summary = try BatonJSON.decode(RecordSummary.self, from: data)
        } catch {
            throw Self.corruptRecord(id, path: path, reason: Self.reason(data, error))
        }
        var record = summary.record
        guard record.id == id else { throw Self.corruptRecord(id, path: path, reason: "it records deployment '\(record.id)'") }
        let logPath = layout.deploymentEvents(id)
        guard let log = FileManager.default.contents(atPath: logPath) else { return (record, 0) }
        let lines = EventLogFile.lines(log).lines
        for (index, line) in lines.enumerated() where index >= summary.eventLogLines {
            do {
                try BatonJSON.decode(RecordChange.self, from: line).apply(to: &record)
            } catch {
                throw Self.corruptRecord(
                    id, path: logPath, reason: "line \(index + 1) of its event log: \(Self.reason(line, error))")
            }
        }
        return (record, lines.count)
    }

    /// Every deployment record that cannot be read (all apps), by file name order.
    func unreadableRecords(where include: (String) -> Bool = { _ in true }) -> [AgentError] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: layout.deploymentsDirectory)) ?? []
        return files.filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") && include(String($0.dropLast(5))) }.sorted().compactMap { file -> AgentError? in
            do throws(AgentError) {
                _ = try loadRecord(String(file.dropLast(5)))
                return nil
            } catch {
                return error
            }
        }
    }

    /// What is wrong with the records `state` depends on (its running and its last
    /// deployment), if anything.
    func recordProblem(_ state: AppState) -> AgentError? {
        for id in [state.activeDeploymentID, state.lastDeploymentID].compactMap({ $0 }) {
            do {
                _ = try loadRecord(id)
            } catch {
                return error
            }
        }
        return nil
    }

    static func reason(_ data: Data, _ error: any Error) -> String {
        if data.isEmpty { return "it is empty" }
        if let error = error as? DecodingError { return error.batonSummary }
        return "\(error)"
    }

    static func corruptState(_ app: String, path: String, reason: String, live: String?) -> AgentError {
        AgentError(
            .stateCorrupt,
            "state file \(path) is unreadable (\(reason)); `current` names \(live.map { "release \($0)" } ?? "no release"). "
                + "Nothing of '\(app)' is changed and its deployments are refused until it is rebuilt: stop batond, "
                + "run `batond state rebuild \(app)` (it keeps the unreadable file aside), start batond again")
    }

    static func corruptRecord(_ id: String, path: String, reason: String) -> AgentError {
        let app = DeploymentID.app(of: id).map { "'\($0)'" } ?? "its app"
        return AgentError(
            .stateCorrupt,
            "deployment record \(path) is unreadable (\(reason)). It is left as it is, and deployments of \(app) are "
                + "refused while it is the last or the running one: stop batond, run `batond state rebuild "
                + "\(DeploymentID.app(of: id) ?? "APP")` (it keeps the unreadable record aside), start batond again")
    }

    /// Rewrites a record's summary durably: the whole record, which already includes
    /// the first `eventLogLines` lines of its event log.
    func writeSummary(_ record: DeploymentRecord, eventLogLines: Int) throws(AgentError) {
        try DurableFiles.write(encode(RecordSummary(record: record, eventLogLines: eventLogLines)), to: layout.deployment(record.id))
    }

    /// The first summary of a new record. A log left under the same id (it cannot be
    /// there unless a person put it there) would otherwise be read as this record's.
    func writeNewRecord(_ record: DeploymentRecord) throws(AgentError) {
        if unlink(layout.deploymentEvents(record.id)) != 0 && errno != ENOENT {
            throw AgentError.io("remove \(layout.deploymentEvents(record.id))")
        }
        try writeSummary(record, eventLogLines: 0)
    }

    /// Appends one change to a record's event log: one write(2), no fsync (see
    /// docs/durability.md: nothing recovery decides on is only in the log).
    func appendChange(_ change: RecordChange, to id: String) throws(AgentError) {
        let line: Data
        do {
            line = try BatonJSON.encode(change)
        } catch {
            throw AgentError(.ioError, "cannot encode a record change: \(error)")
        }
        try EventLogFile.append(line, to: layout.deploymentEvents(id))
    }

    // MARK: Approved manifests

    /// Stores the evidence that `approval.release` was approved under the full threshold.
    /// Written when the release is installed (or re-approved), never by a return.
    func saveApproved(_ approval: ApprovedRelease) async throws(AgentError) {
        try await Blocking.files { () throws(AgentError) in try writeApproved(approval) }
    }

    func writeApproved(_ approval: ApprovedRelease) throws(AgentError) {
        try DurableFiles.makeDirectory(layout.approvedDirectory(approval.app))
        try DurableFiles.write(encode(approval), to: layout.approved(approval.app, approval.release))
    }

    /// The approval of a release, only if it is intact: the payload decodes, its digest is
    /// the recorded one, and it parses as a manifest for this app and release. Anything
    /// else counts as no approval (the full threshold then applies).
    func loadApproved(app: String, release: String) -> (record: ApprovedRelease, manifest: Manifest)? {
        guard let data = FileManager.default.contents(atPath: layout.approved(app, release)),
            let record = try? BatonJSON.decode(ApprovedRelease.self, from: data),
            record.app == app, record.release == release,
            let payload = Base64.decode(record.payload), Digest.sha256Hex(payload) == record.payloadDigest,
            let manifest = try? Manifest.parse(payload: payload), manifest.app == app, manifest.release == release
        else { return nil }
        return (record, manifest)
    }

    func approvedManifest(app: String, release: String) -> Manifest? { loadApproved(app: app, release: release)?.manifest }

    func removeApproved(app: String, release: String) {
        unlink(layout.approved(app, release))
        unlink(layout.manifest(app, release))
    }

    /// The releases of `state` a return may name: on disk, succeeded here, approval intact.
    func heldReleases(_ state: AppState) -> [(release: AppState.InstalledRelease, record: ApprovedRelease, manifest: Manifest)] {
        state.releases.compactMap { release in
            guard release.succeededAt != nil, DurableFiles.isDirectory(layout.releaseDirectory(state.app, release.name)),
                let approval = loadApproved(app: state.app, release: release.name)
            else { return nil }
            return (release, approval.record, approval.manifest)
        }
    }

    /// What the verifier needs to know of `state`.
    func verificationHistory(_ state: AppState) -> AppHistory {
        AppHistory(
            lastSerial: state.lastSerial, lastPayloadDigest: state.lastPayloadDigest,
            approvedReleases: Dictionary(heldReleases(state).map { ($0.release.name, $0.manifest) }, uniquingKeysWith: { $1 }))
    }

    private func encode<T: Encodable>(_ value: T) throws(AgentError) -> Data {
        do {
            return try BatonJSON.encode(value, pretty: true)
        } catch {
            throw AgentError(.ioError, "cannot encode state: \(error)")
        }
    }
}
