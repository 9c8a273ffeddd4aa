import ArgumentParser
import BatonCLISupport
import BatonController
import BatonProtocol
import Foundation

/// `baton rollout ENVELOPE ...` (the default subcommand, `start`), `resume`, `abort`.
struct RolloutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollout",
        abstract: "Roll a signed release out to the fleet: canary, batches, failure threshold, revert on halt.",
        usage: """
            baton rollout ENVELOPE [--artifact file] [--environment env] [--hosts ids] [--selector key=value,...]
                                   [--canary n] [--pause-after-canary] [--batch n|n%] [--pause duration] [--parallel n]
                                   [--failure-threshold n|n%] [--max-unavailable n|n%] [--no-auto-revert] [--upload-parallel n]
                                   [--lock-wait duration] [--dry-run] [--json | --plain | --brief]
            baton rollout resume ROLLOUT_ID
            baton rollout abort ROLLOUT_ID
            """,
        discussion: """
            `baton rollout ENVELOPE [options]` starts one (every option is described by `baton rollout start --help`); \
            `resume` and `abort` pick up a paused or stopped one.

            Exit status: 0 all hosts succeeded; 1 the rollout failed and every host is on a known healthy release; \
            2 usage or configuration errors; 3 hosts need attention; 4 the rollout lock is held by another live \
            rollout (or this one lost it); 5 paused after the canary.
            """,
        subcommands: [RolloutStartCommand.self, Resume.self, Abort.self],
        defaultSubcommand: RolloutStartCommand.self)
}

extension RolloutCommand {
    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "resume",
            abstract: "Continue a rollout that paused after its canary or whose controller stopped.",
            discussion: "Asks every host again; hosts that already have the release answer with their existing deployment, so nothing is deployed twice.")
        @Argument(help: "The rollout id (`baton history`).") var rolloutID: String
        @OptionGroup var output: OutputOptions
        @OptionGroup var controller: ControllerOptions

        func run() async throws {
            let context = try ControllerContext(controller)
            let (record, recorded) = try RolloutCommand.recorded(rolloutID, context: context, allowed: RecordedRollout.resumable)
            var request = recorded
            // A freeze that began while it was paused holds it, as it would a new rollout.
            let policy = try context.policy()
            do { try request.recheckFreeze(policy: policy) } catch { throw error.cli }
            // Resumed on another runner than the one that started it: its artifact may be there only.
            do {
                try ArtifactWhereabouts.check(
                    request.manifest, artifactFile: request.artifactFile, state: context.state, registry: try context.releaseStore())
            } catch let error as ControllerError where error.code == .artifactElsewhere {
                throw error.cli
            } catch {}
            throw ExitCode(try await context.runRollout(request, signers: record.signers, output: output))
        }
    }

    struct Abort: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "abort",
            abstract: "End a paused or stopped rollout: every host it moved goes back to its previous release, at once.")
        @Argument(help: "The rollout id (`baton history`).") var rolloutID: String
        @OptionGroup var output: OutputOptions
        @OptionGroup var controller: ControllerOptions

        func run() async throws {
            let context = try ControllerContext(controller)
            let (record, request) = try RolloutCommand.recorded(rolloutID, context: context, allowed: RecordedRollout.abortable)
            throw ExitCode(try await context.runRollout(
                request, signers: record.signers, output: output, mode: .abort(reason: "aborted by \(ControllerActor.current)")))
        }
    }

    /// The recorded rollout `rolloutID` and the request that picks it up.
    static func recorded(_ rolloutID: String, context: ControllerContext, allowed: Set<RolloutOutcome?>) throws(CLIError)
        -> (RolloutRecord, RolloutRequest)
    {
        let history = try context.history()
        let recorded: RecordedRollout
        do { recorded = try RecordedRollout.load(rolloutID, from: history, allowed: allowed) } catch { throw error.cli }
        let fleet = try context.fleet()
        let revertKey = try context.revertKey()
        do { return (recorded.record, try recorded.request(fleet: fleet, state: context.state, revertKey: revertKey)) } catch {
            throw error.cli
        }
    }
}
