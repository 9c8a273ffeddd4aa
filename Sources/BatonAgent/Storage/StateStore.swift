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

    func loadApp(_ app: String) throws(AgentError) -> AppState {
        let path = layout.appState(app)
        guard let data = FileManager.default.contents(atPath: path) else { return AppState(app: app) }
        do {
            return try BatonJSON.decode(AppState.self, from: data)
        } catch {
            throw AgentError(.ioError, "state file \(path) is unreadable: \(error)")
        }
    }

    func saveApp(_ state: AppState) throws(AgentError) {
        try DurableFiles.write(encode(state), to: layout.appState(state.app))
    }

    func apps() -> [String] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: layout.appStateDirectory)) ?? []
        return files.filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }.map { String($0.dropLast(5)) }.sorted()
    }

    func loadRecord(_ id: String) throws(AgentError) -> DeploymentRecord? {
        guard DeploymentID.isValid(id) else { return nil }
        guard let data = FileManager.default.contents(atPath: layout.deployment(id)) else { return nil }
        do {
            return try BatonJSON.decode(DeploymentRecord.self, from: data)
        } catch {
            throw AgentError(.ioError, "deployment record \(id) is unreadable: \(error)")
        }
    }

    func saveRecord(_ record: DeploymentRecord) throws(AgentError) {
        try DurableFiles.write(encode(record), to: layout.deployment(record.id))
    }

    // MARK: Approved manifests

    /// Stores the evidence that `approval.release` was approved under the full threshold.
    /// Written when the release is installed (or re-approved), never by a return.
    func saveApproved(_ approval: ApprovedRelease) throws(AgentError) {
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
