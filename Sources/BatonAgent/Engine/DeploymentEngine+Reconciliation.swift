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
    /// Brings the host back to a consistent state after a crash or `kill -9` (docs/design.md §5):
    /// staging, half-received uploads and the trash are removed; a deployment interrupted before the
    /// switch is recorded as failed; one interrupted after the switch but before it was
    /// confirmed healthy is rolled back; release directories no state mentions are
    /// removed. Safe to run again if it is itself interrupted.
    ///
    /// An app whose state or needed records cannot be read is left exactly as it is (its
    /// files are the evidence a person needs) and reported loudly; so is every unreadable
    /// deployment record. Returns what was reported.
    @discardableResult
    public func reconcile() async -> [AgentError] {
        let cache = self.cache, layout = self.layout
        _ = try? await Blocking.files { () throws(AgentError) in
            cache.removeTemporaryFiles()
            DurableFiles.removeTree(layout.hookScratchDirectory)
            try DurableFiles.makeDirectory(layout.hookScratchDirectory)
        }
        let problems = StateReader(layout: layout).problems()
        for problem in problems {
            logger.critical(
                "state is corrupt; the app is left as it is and its deployments are refused",
                metadata: ["baton.code": "\(problem.reportedCode)", "error": "\(problem.message)"])
        }
        for app in store.apps() {
            guard Name.isValid(app), var state = try? store.loadApp(app), store.recordProblem(state) == nil else { continue }
            let stagingRoot = layout.stagingRoot(app)
            _ = try? await Blocking.files { () throws(AgentError) in DurableFiles.removeTree(stagingRoot) }

            if let id = state.activeDeploymentID {
                if let record = try? store.loadRecord(id) {
                    if record.phase.isTerminal {
                        // It ended, but the agent died before the app's state caught up.
                        await settleState(after: record)
                    } else {
                        await settle(record)
                    }
                } else {
                    // The agent died between consuming the serial and writing the record.
                    state.activeDeploymentID = nil
                    try? await store.saveApp(state)
                }
            }

            // Release directories that no state names (a crash between moving one into
            // place and recording it) are never live: remove them.
            guard var state = try? store.loadApp(app) else { continue }
            await carryOverLegacyApprovals(state)
            let live = currentRelease(app)
            let known = Set(state.releases.map(\.name))
            let onDisk = (try? FileManager.default.contentsOfDirectory(atPath: layout.releasesDirectory(app))) ?? []
            for name in onDisk where !known.contains(name) && name != live {
                logger.warning("removing unrecorded release directory", metadata: ["baton.app": "\(app)", "baton.release": "\(name)"])
                let directory = layout.releaseDirectory(app, name)
                _ = try? await Blocking.files { () throws(AgentError) in DurableFiles.removeTree(directory) }
            }
            if state.current != live {
                state.current = live
                state.previous = state.previousLive(current: live)
                try? await store.saveApp(state)
            }
        }
        // Last, once settling is done (its retention may have dropped trees): the trees
        // dropped before a stop and not removed yet, and those. No state names them.
        let trash = self.trash
        _ = try? await Blocking.files { () throws(AgentError) in trash.emptyNow() }
        return problems
    }

    /// Agents before 0.2 kept, per release, the payload it last ran with, which a return
    /// could overwrite. Such a payload becomes the release's approved manifest only when a
    /// deployment record proves it was accepted under the full threshold (not as a
    /// return) and succeeded with exactly those bytes; anything else is left unapproved,
    /// so a return to that release needs the full threshold.
    func carryOverLegacyApprovals(_ state: AppState) async {
        let app = state.app
        let legacy = state.releases.filter {
            $0.succeededAt != nil && store.loadApproved(app: app, release: $0.name) == nil
                && FileManager.default.fileExists(atPath: layout.manifest(app, $0.name))
        }
        guard !legacy.isEmpty else { return }
        let records = ((try? FileManager.default.contentsOfDirectory(atPath: layout.deploymentsDirectory)) ?? [])
            .filter { $0.hasPrefix("\(app)-") && $0.hasSuffix(".json") }
            .compactMap { try? store.loadRecord(String($0.dropLast(5))) }
        for release in legacy {
            guard let payload = FileManager.default.contents(atPath: layout.manifest(app, release.name)) else { continue }
            let digest = Digest.sha256Hex(payload)
            guard let record = records.first(where: {
                $0.release == release.name && $0.phase == .succeeded && !$0.isRollback && $0.payloadDigest == digest
            }) else {
                logger.warning(
                    "no record proves the stored manifest was approved; a return to this release needs the full threshold",
                    metadata: ["baton.app": "\(app)", "baton.release": "\(release.name)"])
                continue
            }
            let approval = ApprovedRelease(
                app: app, release: release.name, payload: Base64.encode(payload), payloadDigest: digest, signers: record.signers,
                requiredSignatures: policy.environments[record.environment]?.threshold ?? record.signers.count,
                serial: record.serial, deploymentID: record.id, approvedAt: record.createdAt)
            try? await store.saveApproved(approval)
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
            id: id, app: record.app, release: record.release, manifest: nil, approval: nil, artifactFile: nil)
        await recordReconciliation(id, message)
        var (machine, step) = DeploymentStateMachine.reconcile(record.phase, error: error)
        await drive(id, machine: &machine, step: step)
        ended(id)
    }
}
