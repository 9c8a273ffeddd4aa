import BatonProtocol
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What a data directory says about its apps, read without taking the agent's lock and
/// without writing anything: `batond status` runs beside `batond run`, and the engine
/// answers `GET /v1/apps` with the same reading.
///
/// An app whose state cannot be read is still listed, with `stateError` set: an answer
/// that left it out would look like a host that never ran it.
public struct StateReader: Sendable {
    public let layout: DataLayout
    let store: StateStore

    public init(dataDirectory: String) {
        self.init(layout: DataLayout(root: dataDirectory))
    }

    init(layout: DataLayout) {
        self.layout = layout
        store = StateStore(layout: layout)
    }

    /// Every app the host deployed or holds, unreadable ones included.
    public func apps() -> [AppStatus] { store.apps().compactMap { appStatus($0) } }

    /// One app's status; nil for an app the host never saw.
    public func appStatus(_ app: String) -> AppStatus? {
        guard Name.isValid(app) else { return nil }
        let live = store.currentRelease(app)
        let state: AppState
        do {
            state = try store.loadApp(app)
        } catch {
            return AppStatus(app: app, current: live, stateError: error.info)
        }
        guard state.lastSerial != nil || state.current != nil || live != nil else { return nil }
        var last: DeploymentRecord?
        var stateError = store.recordProblem(state)?.info
        if let id = state.lastDeploymentID {
            do {
                last = try store.loadRecord(id)
            } catch {
                stateError = error.info
            }
        }
        let recency = Dictionary(state.recentlyLive.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        let held = store.heldReleases(state)
            .sorted { (recency[$0.release.name] ?? .max) < (recency[$1.release.name] ?? .max) }
            .map { HeldRelease(release: $0.release.name, approved: $0.manifest, approvedPayloadDigest: $0.record.payloadDigest, approvedBy: $0.record.signers) }
        return AppStatus(
            app: app, current: live, previous: state.previousLive(current: live), lastSerial: state.lastSerial,
            lastDeploymentID: state.lastDeploymentID, lastPhase: last?.phase, lastError: last?.error,
            activeDeploymentID: state.activeDeploymentID,
            releases: state.releases.reversed().map(\.name),
            succeededReleases: held.map(\.release),
            releaseArtifacts: Dictionary(held.map { ($0.release, $0.approved.artifact) }, uniquingKeysWith: { $1 }),
            held: held,
            liveHistory: state.liveHistory.reversed(),
            updatedAt: state.updatedAt,
            stateError: stateError)
    }

    /// A deployment record as the agent serves it (its summary and the rest of its event
    /// log); nil when there is none, `state_corrupt` when it is there but does not read.
    public func record(_ id: String) throws(AgentError) -> DeploymentRecord? { try store.loadRecord(id) }

    /// Every file of the state that cannot be read: app states, then deployment records
    /// (all of them, not only those an app's status depends on).
    public func problems() -> [AgentError] {
        var problems: [AgentError] = []
        for app in store.apps() where Name.isValid(app) {
            do {
                _ = try store.loadApp(app)
            } catch {
                problems.append(error)
            }
        }
        return problems + store.unreadableRecords()
    }

    /// The unreadable files of one app: its state, and its own deployment records.
    public func problems(of app: String) -> [AgentError] {
        guard Name.isValid(app) else { return [] }
        var problems: [AgentError] = []
        do {
            _ = try store.loadApp(app)
        } catch {
            problems.append(error)
        }
        return problems + store.unreadableRecords { DeploymentID.app(of: $0) == app }
    }
}
