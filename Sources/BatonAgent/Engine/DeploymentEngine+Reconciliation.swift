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
import Logging

extension DeploymentEngine {
    /// Brings the host back to a consistent state after a crash or `kill -9` (DESIGN §5):
    /// staging and half-received uploads are removed; a deployment interrupted before the
    /// switch is recorded as failed; one interrupted after the switch but before it was
    /// confirmed healthy is rolled back; release directories no state mentions are
    /// removed. Safe to run again if it is itself interrupted.
    public func reconcile() async {
        cache.removeTemporaryFiles()
        DurableFiles.removeTree(layout.hookScratchDirectory)
        try? DurableFiles.makeDirectory(layout.hookScratchDirectory)
        for app in store.apps() {
            guard Name.isValid(app), var state = try? store.loadApp(app) else { continue }
            DurableFiles.removeTree(layout.stagingRoot(app))

            if let id = state.activeDeploymentID {
                if let record = try? store.loadRecord(id) {
                    if record.phase.isTerminal {
                        // It ended, but the agent died before the app's state caught up.
                        settleState(after: record)
                    } else {
                        await settle(record)
                    }
                } else {
                    // The agent died between consuming the serial and writing the record.
                    state.activeDeploymentID = nil
                    try? store.saveApp(state)
                }
            }

            // Release directories that no state names (a crash between moving one into
            // place and recording it) are never live: remove them.
            guard var state = try? store.loadApp(app) else { continue }
            let live = currentRelease(app)
            let known = Set(state.releases.map(\.name))
            let onDisk = (try? FileManager.default.contentsOfDirectory(atPath: layout.releasesDirectory(app))) ?? []
            for name in onDisk where !known.contains(name) && name != live {
                logger.warning("removing unrecorded release directory", metadata: ["baton.app": "\(app)", "baton.release": "\(name)"])
                DurableFiles.removeTree(layout.releaseDirectory(app, name))
            }
            if state.current != live {
                state.current = live
                state.previous = live.flatMap { previousRelease(state, current: $0) }
                try? store.saveApp(state)
            }
        }
    }

    /// Ends a deployment found in a non-terminal phase at start.
    private func settle(_ record: DeploymentRecord) async {
        let id = record.id
        let message = record.phase.isAfterSwitch
            ? "batond stopped during \(record.phase.rawValue), after the switch; rolling back at restart"
            : "batond stopped during \(record.phase.rawValue), before the switch; nothing was switched"
        let error = ErrorInfo(code: AgentError.Code.interrupted.rawValue, message: message)
        logger.warning("settling an interrupted deployment", metadata: ["baton.app": "\(record.app)", "baton.deployment.id": "\(id)", "baton.phase": "\(record.phase.rawValue)"])

        contexts[id] = RunContext(
            id: id, app: record.app, release: record.release, manifest: nil, payload: [], artifactFile: nil)
        recordReconciliation(id, message)
        var (machine, step) = DeploymentStateMachine.reconcile(record.phase, error: error)
        await drive(id, machine: &machine, step: step)
        contexts[id] = nil
    }

    private func recordReconciliation(_ id: String, _ message: String) {
        guard var record = try? store.loadRecord(id) else { return }
        record.reconciliation = message
        try? store.saveRecord(record)
    }
}
