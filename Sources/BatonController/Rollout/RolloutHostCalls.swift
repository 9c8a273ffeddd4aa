import BatonProtocol
import Foundation

/// The calls a rollout makes to one host's agent, each reporting what happened as
/// ``RolloutStateMachine/Event``s through `post`, in order. Deciding what to call, and
/// what the answers mean, is the state machine's job.
struct RolloutHostCalls: Sendable {
    typealias Event = RolloutStateMachine.Event

    let client: any AgentClient
    let app: String
    /// The signed envelope, sent to every host as is.
    let envelope: [UInt8]
    let artifact: ArtifactReference
    let artifactFile: String?
    let uploadSlots: UploadSlots
    let clock: @Sendable () -> Date
    let post: @Sendable (Event) -> Void
    /// Keeps receipts and revert envelopes for `baton evidence` (nil: not kept).
    var receipts: ReceiptCollector? = nil

    /// What the agents know before anything changes: current release, last serial, and
    /// the artifacts and approved manifests of the releases they hold (for reverts). Asked
    /// through the one fan-out: bounded width, a deadline per host.
    func query(_ hosts: [Fleet.Host], fanOut: FanOut = FanOut()) async {
        let client = self.client
        let app = self.app
        for answer in await fanOut.ask(hosts, { host throws(AgentCallError) in try await client.appStatus(host, app: app) }) {
            switch answer.result {
            case .success(let status): post(.statusAnswered(host: answer.host.id, status: status, now: clock()))
            case .failure(let error): post(.statusFailed(host: answer.host.id, error: error, now: clock()))
            }
        }
    }

    /// Upload where asked, post the envelope, follow its events to the end.
    func deploy(_ host: Fleet.Host, upload: Bool) async {
        do throws(AgentCallError) {
            if upload, let file = artifactFile { try await self.upload(host, file: file) }
            let accepted = try await client.submit(host, envelope: envelope)
            post(.accepted(host: host.id, deploymentID: accepted.id, existing: accepted.existing, now: clock()))
            let record = try await follow(host, deploymentID: accepted.id)
            receipts?.ended(host: host.id, record: record)
            post(.hostFinished(host: host.id, phase: HostPhase(record.phase), error: record.error, deploymentID: record.id, now: clock()))
        } catch {
            post(.hostFinished(host: host.id, phase: HostPhase(callError: error), error: error.info, deploymentID: nil, now: clock()))
        }
    }

    /// HEAD, and PUT where missing, within the rollout's bound on concurrent uploads; the
    /// events between "checking" and "uploaded" are the time the host holds a slot.
    func upload(_ host: Fleet.Host, file: String) async throws(AgentCallError) {
        if !(await uploadSlots.tryAcquire()) {
            post(.uploadProgress(host: host.id, message: "waiting for an upload slot (\(uploadSlots.count) at a time)", now: clock()))
            await uploadSlots.acquire()
        }
        post(.uploadProgress(host: host.id, message: "checking for artifact sha256:\(artifact.sha256.prefix(12))", now: clock()))
        let result = await client.uploadArtifactResult(host, file: file, sha256: artifact.sha256, size: artifact.size)
        if case .success(let sent) = result {
            post(.uploadProgress(host: host.id, message: sent ? "uploaded \(artifact.size) bytes" : "the agent already holds the artifact", now: clock()))
        }
        await uploadSlots.release()
        _ = try result.get()
    }

    /// Sends a signed revert and follows it to the end.
    func revert(_ host: Fleet.Host, envelope: [UInt8]) async {
        receipts?.sent(revert: envelope)
        do throws(AgentCallError) {
            let accepted = try await client.submit(host, envelope: envelope)
            post(.accepted(host: host.id, deploymentID: accepted.id, existing: accepted.existing, now: clock()))
            let record = try await follow(host, deploymentID: accepted.id)
            receipts?.ended(host: host.id, record: record)
            post(.revertFinished(host: host.id, end: .ended(phase: record.phase, deploymentID: record.id, error: record.error), now: clock()))
        } catch {
            post(.revertFinished(host: host.id, end: .callFailed(error.info), now: clock()))
        }
    }

    func follow(_ host: Fleet.Host, deploymentID: String) async throws(AgentCallError) -> DeploymentRecord {
        let post = self.post
        let clock = self.clock
        return try await client.follow(host, deploymentID: deploymentID) { agentEvent in
            post(.agentEvent(host: host.id, event: agentEvent, now: clock()))
        }
    }
}
