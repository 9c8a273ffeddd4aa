import BatonArchive
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

/// The steps of a deployment. Each returns an outcome for the state machine; none
/// decides what comes next.
extension DeploymentEngine {
    typealias Outcome = DeploymentStateMachine.Outcome

    func fetch(_ id: String) async -> Outcome {
        guard let context = contexts[id], let manifest = context.manifest else { return .failed(missingContext(id)) }
        let artifact = manifest.artifact
        do {
            let state = try store.loadApp(context.app)
            if let installed = state.installed(context.release),
                DurableFiles.isDirectory(layout.releaseDirectory(context.app, context.release))
            {
                guard installed.artifactSHA256 == artifact.sha256 else {
                    return .failed(
                        AgentError(
                            .releaseConflict,
                            "release '\(context.release)' is already installed from artifact \(installed.artifactSHA256), not \(artifact.sha256); give the new build a new release name"
                        ).info)
                }
                contexts[id]?.reuseInstalled = true
                note(id, "release \(context.release) is already on disk; nothing to fetch or unpack")
                return .succeeded
            }
            if cache.contains(artifact.sha256) {
                var st = stat()
                guard lstat(layout.artifact(artifact.sha256), &st) == 0, UInt64(st.st_size) == artifact.size else {
                    return .failed(
                        AgentError(.sizeMismatch, "the cached artifact's size differs from the manifest's \(artifact.size) bytes").info)
                }
                cache.touch(artifact.sha256)
                note(id, "artifact found in the cache")
                return .succeeded
            }
            guard let file = context.artifactFile else {
                return .failed(
                    AgentError(
                        .artifactUnavailable,
                        "artifact sha256:\(artifact.sha256) is not on this host; upload it (PUT /v1/artifacts/sha256/\(artifact.sha256)) before deploying"
                    ).info)
            }
            let cache = self.cache
            try await Blocking.run { try cache.ingest(file: file, digest: artifact.sha256, size: artifact.size) }
            note(id, "artifact received and verified (\(artifact.size) bytes)")
            return .succeeded
        } catch let error as AgentError {
            return .failed(error.info)
        } catch {
            return .failed(ErrorInfo(code: AgentError.Code.ioError.rawValue, message: "\(error)"))
        }
    }

    func unpack(_ id: String) async -> Outcome {
        guard let context = contexts[id], let manifest = context.manifest else { return .failed(missingContext(id)) }
        if context.reuseInstalled { return .succeeded }
        let staging = layout.stagingDirectory(context.app, id)
        let archive = layout.artifact(manifest.artifact.sha256)
        let limits = {
            var limits = ExtractionLimits()
            limits.maxEntries = configuration.limits.maxArchiveEntries
            limits.maxTotalBytes = configuration.limits.maxUnpackedBytes
            return limits
        }()
        let format: ArchiveFormat = manifest.artifact.format == .tar ? .tar : .tarGz
        do {
            DurableFiles.removeTree(staging)
            try DurableFiles.makeDirectory(layout.stagingRoot(context.app), mode: DataLayout.releaseDirectoryMode)
            try DurableFiles.makeDirectory(staging, mode: DataLayout.releaseDirectoryMode)
            let summary = try await Blocking.run { () throws -> ExtractionSummary in
                let summary = try ArchiveExtractor.extract(archiveAt: archive, format: format, into: staging, limits: limits)
                // One syncfs for the whole tree instead of an fsync per file: the release
                // must be on disk before `current` can name it.
                try ArchiveExtractor.syncTree(staging)
                return summary
            }
            note(id, "unpacked " + [(UInt64(summary.files), "file"), (UInt64(summary.directories), "directory"), (UInt64(summary.bytes), "byte")]
                .map { count, noun in "\(count) \(count == 1 ? noun : noun == "directory" ? "directories" : noun + "s")" }
                .joined(separator: ", "))
            return .succeeded
        } catch let error as ExtractionError {
            DurableFiles.removeTree(staging)
            let code: AgentError.Code = error.code == .diskFull ? .diskFull : .extractionFailed
            return .failed(ErrorInfo(code: code == .diskFull ? code.rawValue : error.code.rawValue, message: error.message))
        } catch let error as AgentError {
            DurableFiles.removeTree(staging)
            return .failed(error.info)
        } catch {
            DurableFiles.removeTree(staging)
            return .failed(ErrorInfo(code: AgentError.Code.ioError.rawValue, message: "\(error)"))
        }
    }

    func prepare(_ id: String) async -> Outcome {
        guard let context = contexts[id], let manifest = context.manifest else { return .failed(missingContext(id)) }
        if context.reuseInstalled { return .succeeded }
        guard let hook = manifest.hooks?.prepare else {
            note(id, "no prepare hook")
            return .succeeded
        }
        let staging = layout.stagingDirectory(context.app, id)
        let run = await hooks.run(
            invocation(
                "prepare", hook, context: context, releaseDirectory: staging,
                previous: currentRelease(context.app)))
        recordHook(id, run)
        if run.succeeded {
            note(id, "prepare hook succeeded")
            return .succeeded
        }
        return .failed(AgentError(.prepareFailed, "prepare hook \(Self.describe(run))").info)
    }

    func switchOver(_ id: String) async -> Outcome {
        guard let context = contexts[id] else { return .failed(missingContext(id)) }
        let app = context.app, release = context.release
        let releaseDirectory = layout.releaseDirectory(app, release)
        do {
            var state = try store.loadApp(app)
            if !context.reuseInstalled {
                let staging = layout.stagingDirectory(app, id)
                try DurableFiles.makeDirectory(layout.releasesDirectory(app), mode: DataLayout.releaseDirectoryMode)
                // A directory of this name that no state mentions was left by a crash.
                DurableFiles.removeTree(releaseDirectory)
                guard rename(staging, releaseDirectory) == 0 else { throw AgentError.io("move the staged release into place") }
                try DurableFiles.syncDirectory(layout.releasesDirectory(app))
                try DurableFiles.syncDirectory(layout.stagingRoot(app))
                if let approval = context.approval { try store.saveApproved(approval) }
                state.releases.removeAll { $0.name == release }
                state.releases.append(
                    AppState.InstalledRelease(name: release, artifactSHA256: context.manifest!.artifact.sha256, installedAt: now()))
                try store.saveApp(state)
            }
            let before = currentRelease(app)
            try DurableFiles.replaceSymlink(layout.currentLink(app), target: "releases/\(release)")
            state.current = release
            state.updatedAt = now()
            try store.saveApp(state)
            note(id, "current → \(release)" + (before.map { " (was \($0))" } ?? ""))
            return .succeeded
        } catch let error as AgentError {
            return .failed(error.info)
        } catch {
            return .failed(ErrorInfo(code: AgentError.Code.ioError.rawValue, message: "\(error)"))
        }
    }

    func activate(_ id: String) async -> Outcome {
        guard let context = contexts[id], let manifest = context.manifest else { return .failed(missingContext(id)) }
        guard let hook = manifest.hooks?.activate else {
            note(id, "no activate hook")
            return .succeeded
        }
        let previous = (try? store.loadRecord(id))?.previousRelease
        let run = await hooks.run(
            invocation(
                "activate", hook, context: context, releaseDirectory: layout.releaseDirectory(context.app, context.release),
                previous: previous))
        recordHook(id, run)
        if run.succeeded {
            note(id, "activate hook succeeded")
            return .succeeded
        }
        return .failed(AgentError(.activateFailed, "activate hook \(Self.describe(run))").info)
    }

    func check(_ id: String) async -> Outcome {
        guard let context = contexts[id], let manifest = context.manifest else { return .failed(missingContext(id)) }
        guard let policy = manifest.health else {
            note(id, "no health checks declared")
            return .succeeded
        }
        let directory = layout.releaseDirectory(context.app, context.release)
        let environment = hookEnvironment(context: context, releaseDirectory: directory, previous: nil, phase: "checking")
        let healthy = await health.waitUntilHealthy(
            policy, stage: "checking", release: context.release, workingDirectory: directory, environment: environment,
            onAttempt: { attempts in await self.recordAttempts(id, attempts) })
        if healthy {
            note(id, "healthy")
            return .succeeded
        }
        let last = (try? store.loadRecord(id))?.healthAttempts.last { !$0.passed }
        return .failed(
            AgentError(
                .healthCheckFailed,
                "no health check attempt passed within \(policy.effectiveDeadline)" + (last.map { "; last: \($0.check): \($0.detail)" } ?? "")
            ).info)
    }

    func bake(_ id: String) async -> Outcome {
        guard let context = contexts[id], let manifest = context.manifest, let policy = manifest.health else {
            return .succeeded
        }
        let directory = layout.releaseDirectory(context.app, context.release)
        let environment = hookEnvironment(context: context, releaseDirectory: directory, previous: nil, phase: "baking")
        let healthy = await health.watch(
            policy, for: manifest.effectiveBake, stage: "baking", release: context.release, workingDirectory: directory,
            environment: environment, onAttempt: { attempts in await self.recordAttempts(id, attempts) })
        if healthy {
            note(id, "baked for \(manifest.effectiveBake) without a failed check")
            return .succeeded
        }
        let last = (try? store.loadRecord(id))?.healthAttempts.last { !$0.passed }
        return .failed(
            AgentError(.bakeFailed, "a health check failed while baking" + (last.map { ": \($0.check): \($0.detail)" } ?? "")).info)
    }

    // MARK: Endings

    // Every ending writes the record's terminal phase first and settles the app's state
    // after it: a kill in between leaves a terminal record whose bookkeeping the next
    // start finishes (`settleState`), never a live deployment that no state points at.

    func complete(_ id: String) {
        guard let context = contexts[id] else { return }
        transition(id, to: .succeeded, "succeeded: \(context.release) is live and healthy")
        if context.reuseInstalled, let approval = context.approval {
            // A held release approved again under the full threshold (it ran with this
            // manifest now): later returns carry this approval.
            do {
                try store.saveApproved(approval)
            } catch {
                logger.error("cannot store the approved manifest", metadata: ["baton.deployment.id": "\(id)", "error": "\(error)"])
            }
        }
        if let record = try? store.loadRecord(id) { settleState(after: record) }
        auditFinished(id)
    }

    func fail(_ id: String, _ error: ErrorInfo) {
        guard let context = contexts[id] else { return }
        let app = context.app
        DurableFiles.removeTree(layout.stagingDirectory(app, id))
        transition(
            id, to: .failed, "failed: \(error.message); \(currentRelease(app).map { "\($0) stays live" } ?? "nothing was live")",
            error: error)
        if let record = try? store.loadRecord(id) { settleState(after: record) }
        auditFinished(id)
    }

    /// Brings the app's state in line with a deployment that reached a terminal phase.
    /// Idempotent: run again after a crash, it finds nothing left to do.
    func settleState(after record: DeploymentRecord) {
        let app = record.app
        DurableFiles.removeTree(layout.stagingDirectory(app, record.id))
        do {
            var state = try store.loadApp(app)
            let live = currentRelease(app)
            if record.phase == .succeeded {
                if let index = state.releases.firstIndex(where: { $0.name == record.release }), state.releases[index].succeededAt == nil {
                    state.releases[index].succeededAt = record.finishedAt ?? now()
                }
                if live == record.release {
                    state.recordLive(record.release, at: record.finishedAt ?? now(), deploymentID: record.id)
                }
            } else if state.installed(record.release)?.succeededAt == nil, live != record.release,
                state.installed(record.release) != nil || DurableFiles.exists(layout.releaseDirectory(app, record.release))
            {
                // A release that never succeeded here and is not live is not kept.
                state.releases.removeAll { $0.name == record.release }
                try store.saveApp(state)
                store.removeApproved(app: app, release: record.release)
                DurableFiles.removeTree(layout.releaseDirectory(app, record.release))
            }
            if state.activeDeploymentID == record.id { state.activeDeploymentID = nil }
            state.lastDeploymentID = record.id
            state.current = live
            state.previous = state.previousLive(current: live)
            state.updatedAt = now()
            if record.phase == .succeeded {
                let keep = live.flatMap { store.approvedManifest(app: app, release: $0) }?.effectiveKeep ?? Manifest.defaultKeep
                state = try applyRetention(state, keep: keep)
            }
            try store.saveApp(state)
            cache.evict(protecting: Set(state.releases.map(\.artifactSHA256)))
        } catch {
            logger.error("cannot settle app state", metadata: ["baton.deployment.id": "\(record.id)", "error": "\(error)"])
        }
    }

    /// Puts back what `current` named before the deployment, re-runs that release's
    /// `activate` from its own stored manifest, and checks its health.
    func rollBack(_ id: String, cause: ErrorInfo) async -> Outcome {
        guard let record = try? store.loadRecord(id) else { return .failed(missingContext(id)) }
        let app = record.app
        do {
            var state = try store.loadApp(app)
            guard let previous = record.previousRelease, previous != record.release,
                DurableFiles.isDirectory(layout.releaseDirectory(app, previous))
            else {
                if let previous = record.previousRelease, previous != record.release {
                    return .failed(
                        AgentError(.rollbackFailed, "the previous release \(previous) is no longer on disk").info)
                }
                if record.previousRelease == nil {
                    // First deployment of the app: there is nothing to go back to, so nothing stays live.
                    try DurableFiles.removeSymlink(layout.currentLink(app))
                    state.current = nil
                    state.previous = nil
                    try store.saveApp(state)
                    note(id, "no previous release: \(app) has no current release now")
                    return .succeeded
                }
                note(id, "\(record.release) was already the live release before; re-activating it")
                return await reactivate(id, app: app, release: record.release)
            }
            try DurableFiles.replaceSymlink(layout.currentLink(app), target: "releases/\(previous)")
            state.current = previous
            state.previous = state.previousLive(current: previous)
            try store.saveApp(state)
            note(id, "current → \(previous) (restored)")
            return await reactivate(id, app: app, release: previous)
        } catch {
            return .failed(error.info)
        }
    }

    /// Runs a release's own activate hook and health checks after a rollback, from the
    /// manifest it was approved with.
    private func reactivate(_ id: String, app: String, release: String) async -> Outcome {
        let directory = layout.releaseDirectory(app, release)
        guard let manifest = store.approvedManifest(app: app, release: release) else {
            note(id, "no approved manifest is held for \(release) (installed by an older agent): it is live again, but no activate hook or health check was run for it")
            return .succeeded
        }
        let context = RunContext(
            id: id, app: app, release: release, manifest: manifest, approval: nil, artifactFile: nil)
        if let hook = manifest.hooks?.activate {
            let run = await hooks.run(invocation("rollback-activate", hook, context: context, releaseDirectory: directory, previous: nil))
            recordHook(id, run)
            guard run.succeeded else {
                return .failed(AgentError(.rollbackFailed, "re-activating \(release) failed: \(Self.describe(run))").info)
            }
        }
        if let policy = manifest.health {
            let environment = hookEnvironment(context: context, releaseDirectory: directory, previous: nil, phase: "rollback")
            let healthy = await health.waitUntilHealthy(
                policy, stage: "rollback", release: release, workingDirectory: directory, environment: environment,
                onAttempt: { attempts in await self.recordAttempts(id, attempts) })
            guard healthy else {
                return .failed(AgentError(.rollbackFailed, "\(release) is not healthy after the rollback").info)
            }
        }
        return .succeeded
    }

    func finishRollback(_ id: String, cause: ErrorInfo, outcome: Outcome, phase: DeploymentPhase) {
        guard let record = try? store.loadRecord(id) else { return }
        let app = record.app
        switch outcome {
        case .succeeded:
            transition(
                id, to: .rolledBack,
                "rolled back: \(cause.message); \(currentRelease(app).map { "\($0) is live again" } ?? "no release is live")",
                error: cause)
        case .failed(let error):
            logger.critical(
                "rollback failed: the host needs attention",
                metadata: ["baton.app": "\(app)", "baton.deployment.id": "\(id)", "error": "\(error.message)"])
            transition(
                id, to: .rollbackFailed, "ROLLBACK FAILED: \(error.message) (after: \(cause.message))",
                error: ErrorInfo(code: AgentError.Code.rollbackFailed.rawValue, message: "\(error.message) (after: \(cause.code): \(cause.message))"))
        }
        if let record = try? store.loadRecord(id) { settleState(after: record) }
        auditFinished(id)
    }

    // MARK: Helpers

    func auditFinished(_ id: String) {
        guard let record = try? store.loadRecord(id) else { return }
        writeCoalescedRefusals(at: now())
        do {
            try audit.append(
                AuditEntry(
                    event: "finished", time: now(), hostID: configuration.hostID, app: record.app, release: record.release,
                    serial: record.serial, deploymentID: id, payloadDigest: record.payloadDigest,
                    signers: record.signers.map(\.keyid), result: record.phase.rawValue, message: record.error?.description))
        } catch {
            logger.error("audit log append failed", metadata: ["error": "\(error)"])
        }
    }

    /// Retention by live history: always keeps `current`, the release live before it, and
    /// the release of any deployment in flight, then the most recently live releases up to
    /// `keep` in all. A release is dropped whole: the state that forgets it is written
    /// first, then its approved manifest and its directory go, so no list can claim a
    /// release the host can no longer prove. The switch away from it is already durable.
    func applyRetention(_ state: AppState, keep: Int) throws(AgentError) -> AppState {
        var state = state
        let live = currentRelease(state.app)
        var kept = Set([live, state.previousLive(current: live)].compactMap { $0 })
        if let active = state.activeDeploymentID, let record = try? store.loadRecord(active) { kept.insert(record.release) }
        for release in state.recentlyLive where kept.count < keep { kept.insert(release) }
        let dropped = state.releases.filter { !kept.contains($0.name) }
        guard !dropped.isEmpty else { return state }
        state.releases.removeAll { !kept.contains($0.name) }
        try store.saveApp(state)
        for release in dropped {
            store.removeApproved(app: state.app, release: release.name)
            DurableFiles.removeTree(layout.releaseDirectory(state.app, release.name))
        }
        return state
    }

    func hookEnvironment(context: RunContext, releaseDirectory: String, previous: String?, phase: String) -> [String: String] {
        [
            "BATON_APP": context.app,
            "BATON_RELEASE": context.release,
            "BATON_RELEASE_DIR": releaseDirectory,
            "BATON_PREVIOUS_RELEASE_DIR": previous.map { layout.releaseDirectory(context.app, $0) } ?? "",
            "BATON_PHASE": phase,
            "BATON_DEPLOYMENT_ID": context.id,
            "BATON_HOST": configuration.hostID,
        ]
    }

    func invocation(_ name: String, _ hook: Hook, context: RunContext, releaseDirectory: String, previous: String?) -> HookInvocation {
        HookInvocation(
            hook: name, release: context.release, command: hook.command, workingDirectory: releaseDirectory,
            environment: hookEnvironment(context: context, releaseDirectory: releaseDirectory, previous: previous, phase: name),
            timeout: hook.effectiveTimeout, outputLimit: configuration.limits.hookOutputBytes)
    }

    static func describe(_ run: HookRun) -> String {
        var text: String
        if run.timedOut {
            text = "timed out and was killed"
        } else if let status = run.exitStatus {
            text = "exited with status \(status)"
        } else {
            text = "was killed by signal \(run.signal ?? 0)"
        }
        let tail = (run.stderrTail.isEmpty ? run.stdoutTail : run.stderrTail)
            .split(separator: "\n").last.map(String.init)
        if let tail, !tail.isEmpty { text += " (\(tail.prefix(200)))" }
        return text
    }

    func missingContext(_ id: String) -> ErrorInfo {
        ErrorInfo(code: AgentError.Code.ioError.rawValue, message: "internal: no context for deployment \(id)")
    }
}
