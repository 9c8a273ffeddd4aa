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

    func saveManifest(_ payload: [UInt8], app: String, release: String) throws(AgentError) {
        try DurableFiles.makeDirectory(layout.manifestsDirectory(app))
        try DurableFiles.write(Data(payload), to: layout.manifest(app, release))
    }

    func loadManifest(app: String, release: String) -> Manifest? {
        guard let data = FileManager.default.contents(atPath: layout.manifest(app, release)) else { return nil }
        return try? BatonJSON.decode(Manifest.self, from: data)
    }

    func removeManifest(app: String, release: String) {
        unlink(layout.manifest(app, release))
    }

    private func encode<T: Encodable>(_ value: T) throws(AgentError) -> Data {
        do {
            return try BatonJSON.encode(value, pretty: true)
        } catch {
            throw AgentError(.ioError, "cannot encode state: \(error)")
        }
    }
}
