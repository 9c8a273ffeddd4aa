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
                await note(id, "release \(context.release) is already on disk; nothing to fetch or unpack")
                return .succeeded
            }
            if context.staged != nil {
                // `batond apply`: read, verified and kept before the serial was consumed.
                await note(id, "artifact received and verified (\(artifact.size) bytes)")
                return .succeeded
            }
            if cache.claim(artifact.sha256, by: id) {
                var st = stat()
                guard lstat(layout.artifact(artifact.sha256), &st) == 0, UInt64(st.st_size) == artifact.size else {
                    // Cached copies are not fsynced (`ArtifactCache`): a power loss can leave one short.
                    unlink(layout.artifact(artifact.sha256))
                    return .failed(
                        AgentError(
                            .sizeMismatch,
                            "the cached copy of sha256:\(artifact.sha256) is \(st.st_size) bytes, not the manifest's \(artifact.size) (torn by a power loss?); it was removed and nothing was switched: deploy again to send the artifact anew"
                        ).info)
                }
                cache.touch(artifact.sha256)
                await note(id, "artifact found in the cache")
                return .succeeded
            }
            guard let file = context.artifactFile else {
                if let url = artifact.url {
                    try await fetchFromURL(id, artifact: artifact, url: url)
                    return claimFetched(id, artifact)
                }
                return .failed(
                    AgentError(
                        .artifactUnavailable,
                        "artifact sha256:\(artifact.sha256) is not on this host and the manifest has no artifact.url; upload it (PUT /v1/artifacts/sha256/\(artifact.sha256)) before deploying"
                    ).info)
            }
            let cache = self.cache
            try await Blocking.run { try cache.ingest(file: file, digest: artifact.sha256, size: artifact.size) }
            await note(id, "artifact received and verified (\(artifact.size) bytes)")
            return claimFetched(id, artifact)
        } catch let error as AgentError {
            return .failed(error.info)
        } catch {
            return .failed(ErrorInfo(code: AgentError.Code.ioError.rawValue, message: "\(error)"))
        }
    }

    /// Claims a copy this deployment just put in the cache for its unpack step. Fails only
    /// if another deployment of the same artifact consumed it in between.
    private func claimFetched(_ id: String, _ artifact: ArtifactReference) -> Outcome {
        if cache.claim(artifact.sha256, by: id) { return .succeeded }
        return .failed(
            AgentError(
                .artifactUnavailable,
                "the copy of sha256:\(artifact.sha256) was unpacked and removed by another deployment of the same artifact before this one could read it; nothing was switched: deploy again"
            ).info)
    }

    /// The bounds an artifact's archive is unpacked within.
    var extractionLimits: ExtractionLimits {
        var limits = ExtractionLimits()
        limits.maxEntries = configuration.limits.maxArchiveEntries
        limits.maxTotalBytes = configuration.limits.maxUnpackedBytes
        return limits
    }

    func unpack(_ id: String) async -> Outcome {
        guard let context = contexts[id], let manifest = context.manifest else { return .failed(missingContext(id)) }
        if context.reuseInstalled { return .succeeded }
        // The trees an earlier deployment dropped are gone before this one writes its own:
        // their space is free again (nearly always at once: removal starts at that end).
        await trash.emptied()
        let staging = layout.stagingDirectory(context.app, id)
        let archive = layout.artifact(manifest.artifact.sha256)
        let limits = extractionLimits, durability = configuration.releaseSync
        let format: ArchiveFormat = manifest.artifact.format == .tar ? .tar : .tarGz
        let stagingRoot = layout.stagingRoot(context.app)
        let staged = context.staged, operatorFile = context.artifactFile
        let cache = self.cache, artifact = manifest.artifact
        do {
            let (summary, hashed) = try await Blocking.run { () throws -> (ExtractionSummary, Bool) in
                DurableFiles.removeTree(staging)
                try DurableFiles.makeDirectory(stagingRoot, mode: DataLayout.releaseDirectoryMode)
                let unpack = LocalArtifactIntake.Unpack(directory: staging, format: format, limits: limits, durability: durability)
                if let staged {
                    // Unpacked (and synced) in the same read that verified the file: only
                    // its place changes. The rename into `releases/` fsyncs the parents.
                    let summary = try staged.result.get()
                    if rename(staged.directory, staging) == 0 { return (summary, true) }
                    // `artifacts/` on another file system than `apps/`: unpack again, from
                    // the operator's file (`batond apply` keeps no cached copy).
                    DurableFiles.removeTree(staged.directory)
                    if let operatorFile {
                        let result = try LocalArtifactIntake.run(
                            file: operatorFile, artifact: artifact, cache: cache, unpack: unpack,
                            retry: "it changed since it was checked; nothing was switched: deploy again with the artifact this envelope was signed for")
                        return (try result!.result.get(), true)
                    }
                }
                // The cached copy is hashed again in the read that unpacks it (it is not
                // fsynced when stored: `ArtifactCache`), unless this agent hashed that very
                // file since it started (`VerifiedCopies`). Once it proved to be the
                // artifact it is consumed (removed unless another deployment in flight
                // claimed it), before the tree is synced. Durable: every file and directory
                // of the tree is on disk before it returns (`releaseSync:`), since the
                // release must be on disk before `current` can name it.
                do {
                    let result = try LocalArtifactIntake.run(
                        file: archive, artifact: artifact, cache: cache, unpack: unpack,
                        retry: "the cached copy was torn or changed since it was stored (a power loss?) and is now removed; nothing was switched: deploy again to send the artifact anew",
                        consume: { cache.consume(artifact.sha256, by: id) })
                    return (try result!.result.get(), result!.hashed)
                } catch let error as AgentError where error.code == .digestMismatch || error.code == .sizeMismatch {
                    unlink(archive)
                    throw error
                }
            }
            let counts = [(UInt64(summary.files), "file"), (UInt64(summary.directories), "directory"), (UInt64(summary.bytes), "byte")]
                .map { count, noun in "\(count) \(count == 1 ? noun : noun == "directory" ? "directories" : noun + "s")" }
                .joined(separator: ", ")
            let synced = switch summary.synced {
            case .fileSystem: "; on disk by one syncfs"
            case .eachFile: "; on disk by an fsync of each file and directory"
            case .none, .automatic: ""
            }
            await note(id, "unpacked " + counts + synced + (hashed ? "" : " (the cached copy is the one this agent hashed when it arrived; not hashed again)"))
            return .succeeded
        } catch let error as ExtractionError {
            removeUnpacked(staging, staged)
            let code: AgentError.Code = error.code == .diskFull ? .diskFull : .extractionFailed
            return .failed(ErrorInfo(code: code == .diskFull ? code.rawValue : error.code.rawValue, message: error.message))
        } catch let error as AgentError {
            removeUnpacked(staging, staged)
            return .failed(error.info)
        } catch {
            removeUnpacked(staging, staged)
            return .failed(ErrorInfo(code: AgentError.Code.ioError.rawValue, message: "\(error)"))
        }
    }

    private nonisolated func removeUnpacked(_ staging: String, _ staged: LocalArtifactIntake.Staged?) {
        DurableFiles.removeTree(staging)
        if let staged { DurableFiles.removeTree(staged.directory) }
    }

    func prepare(_ id: String) async -> Outcome {
        guard let context = contexts[id], let manifest = context.manifest else { return .failed(missingContext(id)) }
        if context.reuseInstalled { return .succeeded }
        guard let hook = manifest.hooks?.prepare else {
            await note(id, "no prepare hook")
            return .succeeded
        }
        let staging = layout.stagingDirectory(context.app, id)
        let run = await hooks.run(
            invocation(
                "prepare", hook, context: context, releaseDirectory: staging,
                previous: currentRelease(context.app)))
        await recordHook(id, run)
        if run.succeeded {
            await note(id, "prepare hook succeeded")
            return .succeeded
        }
        return .failed(AgentError(.prepareFailed, "prepare hook \(Self.describe(run))").info)
    }

    func switchOver(_ id: String) async -> Outcome {
        guard let context = contexts[id] else { return .failed(missingContext(id)) }
        let app = context.app, release = context.release
        let releaseDirectory = layout.releaseDirectory(app, release)
        let layout = self.layout, store = self.store, now = self.now
        do {
            // One hop to the blocking pool for the whole switch: renames, fsyncs and the
            // state writes, in the order a crash must see them.
            let before = try await Blocking.files { () throws(AgentError) -> String? in
                var state = try store.loadApp(app)
                if !context.reuseInstalled {
                    let staging = layout.stagingDirectory(app, id)
                    try DurableFiles.makeDirectory(layout.releasesDirectory(app), mode: DataLayout.releaseDirectoryMode)
                    // A directory of this name that no state mentions was left by a crash.
                    DurableFiles.removeTree(releaseDirectory)
                    guard rename(staging, releaseDirectory) == 0 else { throw AgentError.io("move the staged release into place") }
                    try DurableFiles.syncDirectory(layout.releasesDirectory(app))
                    try DurableFiles.syncDirectory(layout.stagingRoot(app))
                    if let approval = context.approval { try store.writeApproved(approval) }
                    state.releases.removeAll { $0.name == release }
                    state.releases.append(
                        AppState.InstalledRelease(name: release, artifactSHA256: context.manifest!.artifact.sha256, installedAt: now()))
                }
                // One write, before the swap, both lists the release and names it current:
                // `current` in the state is only ever read as the link's echo (readers of
                // what is live read the link; every start, and every ending, sets the
                // state's `current` from the link), so naming it a moment early is
                // harmless, while the release must be known before the link can name it.
                state.current = release
                state.updatedAt = now()
                try store.writeApp(state)
                let before = store.currentRelease(app)
                try DurableFiles.replaceSymlink(layout.currentLink(app), target: "releases/\(release)")
                return before
            }
            await note(id, "current → \(release)" + (before.map { " (was \($0))" } ?? ""))
            return .succeeded
        } catch {
            return .failed(error.info)
        }
    }

    func activate(_ id: String) async -> Outcome {
        guard let context = contexts[id], let manifest = context.manifest else { return .failed(missingContext(id)) }
        guard let hook = manifest.hooks?.activate else {
            await note(id, "no activate hook")
            return .succeeded
        }
        let previous = (try? store.loadRecord(id))?.previousRelease
        let run = await hooks.run(
            invocation(
                "activate", hook, context: context, releaseDirectory: layout.releaseDirectory(context.app, context.release),
                previous: previous))
        await recordHook(id, run)
        if run.succeeded {
            await note(id, "activate hook succeeded")
            return .succeeded
        }
        return .failed(AgentError(.activateFailed, "activate hook \(Self.describe(run))").info)
    }

    func check(_ id: String) async -> Outcome {
        guard let context = contexts[id], let manifest = context.manifest else { return .failed(missingContext(id)) }
        guard let policy = manifest.health else {
            await note(id, "no health checks declared")
            return .succeeded
        }
        let directory = layout.releaseDirectory(context.app, context.release)
        let environment = hookEnvironment(context: context, releaseDirectory: directory, previous: nil, phase: "checking")
        let healthy = await health.waitUntilHealthy(
            policy, stage: "checking", release: context.release, workingDirectory: directory, environment: environment,
            onAttempt: { attempts in await self.recordAttempts(id, attempts) })
        if healthy {
            await note(id, "healthy")
            return .succeeded
        }
        let record = try? store.loadRecord(id)
        if let metric = record?.metricFailure(stage: "checking") { return .failed(metric(.healthCheckFailed)) }
        let last = record?.healthAttempts.last { !$0.passed }
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
            await note(id, "baked for \(manifest.effectiveBake) without a failed check")
            return .succeeded
        }
        let record = try? store.loadRecord(id)
        if let metric = record?.metricFailure(stage: "baking") { return .failed(metric(.bakeFailed)) }
        let last = record?.healthAttempts.last { !$0.passed }
        return .failed(
            AgentError(.bakeFailed, "a health check failed while baking" + (last.map { ": \($0.check): \($0.detail)" } ?? "")).info)
    }

    // MARK: Endings

    // Every ending writes the record's terminal phase first and settles the app's state
    // after it: a kill in between leaves a terminal record whose bookkeeping the next
    // start finishes (`settleState`), never a live deployment that no state points at.

    func complete(_ id: String) async {
        guard let context = contexts[id] else { return }
        await transition(id, to: .succeeded, "succeeded: \(context.release) is live and healthy")
        if context.reuseInstalled, let approval = context.approval {
            // A held release approved again under the full threshold (it ran with this
            // manifest now): later returns carry this approval.
            do {
                try await store.saveApproved(approval)
            } catch {
                logger.error("cannot store the approved manifest", metadata: ["baton.deployment.id": "\(id)", "error": "\(error)"])
            }
        }
        if let record = try? store.loadRecord(id) { await settleState(after: record) }
        await auditFinished(id)
    }

    func fail(_ id: String, _ error: ErrorInfo) async {
        guard let context = contexts[id] else { return }
        let app = context.app
        let staging = layout.stagingDirectory(app, id)
        let staged = context.staged?.directory
        try? await Blocking.files { () throws(AgentError) in
            DurableFiles.removeTree(staging)
            if let staged { DurableFiles.removeTree(staged) }
        }
        await transition(
            id, to: .failed, "failed: \(error.message); \(currentRelease(app).map { "\($0) stays live" } ?? "nothing was live")",
            error: error)
        if let record = try? store.loadRecord(id) { await settleState(after: record) }
        await auditFinished(id)
    }

    /// Brings the app's state in line with a deployment that reached a terminal phase.
    /// Idempotent: run again after a crash, it finds nothing left to do.
    func settleState(after record: DeploymentRecord) async {
        do {
            try await Blocking.files { () throws(AgentError) in try self.settleStateNow(after: record) }
        } catch {
            logger.error("cannot settle app state", metadata: ["baton.deployment.id": "\(record.id)", "error": "\(error)"])
        }
    }

    /// `settleState` on the blocking pool.
    nonisolated func settleStateNow(after record: DeploymentRecord) throws(AgentError) {
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
                try store.writeApp(state)
                store.removeApproved(app: app, release: record.release)
                trash.discard(layout.releaseDirectory(app, record.release), app: app)
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
            try store.writeApp(state)
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
        let layout = self.layout, store = self.store
        do {
            let state = try store.loadApp(app)
            guard let previous = record.previousRelease, previous != record.release,
                DurableFiles.isDirectory(layout.releaseDirectory(app, previous))
            else {
                if let previous = record.previousRelease, previous != record.release {
                    return .failed(
                        AgentError(.rollbackFailed, "the previous release \(previous) is no longer on disk").info)
                }
                if record.previousRelease == nil {
                    // First deployment of the app: there is nothing to go back to, so nothing stays live.
                    try await Blocking.files { () throws(AgentError) in
                        try DurableFiles.removeSymlink(layout.currentLink(app))
                        var next = state
                        next.current = nil
                        next.previous = nil
                        try store.writeApp(next)
                    }
                    await note(id, "no previous release: \(app) has no current release now")
                    return .succeeded
                }
                await note(id, "\(record.release) was already the live release before; re-activating it")
                return await reactivate(id, app: app, release: record.release)
            }
            try await Blocking.files { () throws(AgentError) in
                try DurableFiles.replaceSymlink(layout.currentLink(app), target: "releases/\(previous)")
                var next = state
                next.current = previous
                next.previous = next.previousLive(current: previous)
                try store.writeApp(next)
            }
            await note(id, "current → \(previous) (restored)")
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
            await note(id, "no approved manifest is held for \(release) (installed by an older agent): it is live again, but no activate hook or health check was run for it")
            return .succeeded
        }
        let context = RunContext(
            id: id, app: app, release: release, manifest: manifest, approval: nil, artifactFile: nil)
        if let hook = manifest.hooks?.activate {
            let run = await hooks.run(invocation("rollback-activate", hook, context: context, releaseDirectory: directory, previous: nil))
            await recordHook(id, run)
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

    func finishRollback(_ id: String, cause: ErrorInfo, outcome: Outcome, phase: DeploymentPhase) async {
        guard let record = try? store.loadRecord(id) else { return }
        let app = record.app
        switch outcome {
        case .succeeded:
            await transition(
                id, to: .rolledBack,
                "rolled back: \(cause.message); \(currentRelease(app).map { "\($0) is live again" } ?? "no release is live")",
                error: cause)
        case .failed(let error):
            logger.critical(
                "rollback failed: the host needs attention",
                metadata: ["baton.app": "\(app)", "baton.deployment.id": "\(id)", "error": "\(error.message)"])
            await transition(
                id, to: .rollbackFailed, "ROLLBACK FAILED: \(error.message) (after: \(cause.message))",
                error: ErrorInfo(code: AgentError.Code.rollbackFailed.rawValue, message: "\(error.message) (after: \(cause.code): \(cause.message))"))
        }
        if let record = try? store.loadRecord(id) { await settleState(after: record) }
        await auditFinished(id)
    }

    // MARK: Helpers

    func auditFinished(_ id: String) async {
        guard let record = try? store.loadRecord(id) else { return }
        await writeCoalescedRefusals(at: now())
        do {
            try await audit.appendOffPool(
                AuditEntry(
                    event: "finished", time: now(), hostID: configuration.hostID, app: record.app, release: record.release,
                    serial: record.serial, deploymentID: id, payloadDigest: record.payloadDigest,
                    signers: record.signers.map(\.keyid), result: record.phase.rawValue, message: record.error?.description))
        } catch {
            logger.error("audit log append failed", metadata: ["error": "\(error)"])
        }
        // The deployment's end is in the chain: the agent signs its receipt (+Receipts).
        await storeReceipt(id)
    }

    /// Retention by live history: always keeps `current`, the release live before it, and
    /// the release of any deployment in flight, then the most recently live releases up to
    /// `keep` in all. A release is dropped whole: the state that forgets it is written
    /// first, then its approved manifest and its directory go, so no list can claim a
    /// release the host can no longer prove. The switch away from it is already durable.
    /// The directory goes by one rename into the trash; its files are removed after the
    /// deployment's end (`ReleaseTrash`).
    nonisolated func applyRetention(_ state: AppState, keep: Int) throws(AgentError) -> AppState {
        var state = state
        let live = currentRelease(state.app)
        var kept = Set([live, state.previousLive(current: live)].compactMap { $0 })
        if let active = state.activeDeploymentID, let record = try? store.loadRecord(active) { kept.insert(record.release) }
        for release in state.recentlyLive where kept.count < keep { kept.insert(release) }
        let dropped = state.releases.filter { !kept.contains($0.name) }
        guard !dropped.isEmpty else { return state }
        state.releases.removeAll { !kept.contains($0.name) }
        try store.writeApp(state)
        for release in dropped {
            store.removeApproved(app: state.app, release: release.name)
            trash.discard(layout.releaseDirectory(state.app, release.name), app: state.app)
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
