import BatonCLISupport
import BatonController
import BatonProtocol
import Foundation

extension ControllerContext {
    /// The history store as the release registry (both stores are one): releases,
    /// approvals and serials live beside the rollouts, shared when the store is.
    func releaseStore() throws(CLIError) -> any HistoryStore & ReleaseRegistry {
        guard let store = try history() as? any HistoryStore & ReleaseRegistry else {
            throw CLIError(.internalError, "the configured history store keeps no releases")
        }
        return store
    }
}

extension ControllerContext {
    /// The envelope of the registered release `reference`, with the approvals the store
    /// holds; `threshold_not_met` naming the missing approvers until there are enough.
    func approvedEnvelope(_ reference: String, environment: String?) throws(CLIError) -> [UInt8] {
        let store = try releaseStore()
        let policy = try policy()
        do {
            return try ReleaseApprovals.approvedEnvelope(reference, environment: environment, registry: store, policy: policy).envelope
        } catch {
            throw error.cli
        }
    }
}

extension ControllerContext {
    /// The envelope of the registered release `reference` with whatever approvals it has
    /// (`baton plan APP@RELEASE`, which reports per host whether they suffice).
    func registeredEnvelope(_ reference: String, environment: String?) throws(CLIError) -> [UInt8] {
        let store = try releaseStore()
        do {
            let release = try ReleaseApprovals.resolve(reference, environment: environment, in: store)
            let approvals = try store.approvals(app: release.app, environment: release.environment, serial: release.serial)
            return Array(ReleaseApprovals.envelope(release, approvals: approvals).serialized(pretty: false))
        } catch {
            throw error.cli
        }
    }
}

extension ControllerContext {
    /// `deploy`'s own signature, recorded as an approval of the release it registered, so
    /// `release list` shows who approved it. The rollout's preflight checks the key against
    /// the trust policy; counting approvals checks it again.
    func recordApproval(of created: ReleaseCreation.Created, with key: SigningKey) throws(CLIError) {
        let store = try releaseStore()
        let release = RegisteredRelease(
            manifest: created.manifest, payload: created.payload, artifactHolder: nil, artifactPath: nil,
            createdBy: ControllerActor.current, createdAt: Date())
        do {
            try store.addApproval(try ReleaseApprovals.approve(release, with: key, policy: nil, by: ControllerActor.current, now: Date()))
        } catch {
            throw error.cli
        }
    }
}
