import BatonProtocol
import Foundation

/// Builds a rollout's evidence bundle from the history: the envelope it sent and the
/// reverts it signed, every host's result and receipts, and the approvals as the trust
/// policy in force counts them.
public enum EvidenceExport {
    public static func bundle(
        rolloutID: String, history: any HistoryStore, policy: TrustPolicy, policyText: [UInt8]?,
        exportedBy: String = ControllerActor.current, now: Date = Date()
    ) throws(ControllerError) -> EvidenceBundle {
        guard let record = try history.rollout(id: rolloutID) else {
            throw ControllerError(.rolloutUnknown, "no rollout '\(rolloutID)' in the history (`baton history` lists them)")
        }
        guard let store = history as? any ReceiptStore else {
            throw ControllerError(.stateError, "this history store keeps no receipts")
        }
        guard let sent = try history.resumeInfo(rolloutID: rolloutID)?.envelope, let envelope = try? Envelope.parse(sent),
            let manifest = try? Manifest.parse(payload: envelope.payload)
        else {
            throw ControllerError(.stateError, "the history holds no readable envelope for rollout '\(rolloutID)'")
        }

        var receipts: [EvidenceBundle.ReceiptEntry] = []
        var hosts: [EvidenceBundle.Host] = []
        for host in record.hosts {
            var revert: EvidenceBundle.Revert?
            if host.revertDeploymentID != nil || host.phase == .reverted || host.phase == .revertFailed {
                revert = EvidenceBundle.Revert(deploymentID: host.revertDeploymentID, to: host.previousRelease, reason: record.haltReason)
            }
            hosts.append(EvidenceBundle.Host(
                host: host.host, phase: host.phase.rawValue, wave: host.wave, previousRelease: host.previousRelease,
                deploymentID: host.deploymentID, error: host.error, revert: revert))
            for (role, id) in [(SentEnvelope.Role.rollout, host.deploymentID), (.revert, host.revertDeploymentID)] {
                guard let id, let collected = try store.receipt(host: host.host, deploymentID: id) else { continue }
                receipts.append(EvidenceBundle.ReceiptEntry(host: host.host, role: role, deploymentID: id, receipt: collected.receipt))
            }
        }

        let returns = Set(receipts.compactMap { entry in
            (try? entry.receipt.receipt()).flatMap { $0.isReturn ? $0.manifestDigest : nil }
        })
        let policyDigest = policyText.map { Digest.sha256Hex($0) }
        var envelopes = [entry(envelope, role: .rollout, policy: policy, policyDigest: policyDigest, returns: returns)]
        for revert in try store.envelopes(rolloutID: rolloutID) where revert.role == .revert {
            guard let parsed = try? Envelope.parse(revert.envelope) else { continue }
            envelopes.append(entry(parsed, role: .revert, policy: policy, policyDigest: policyDigest, returns: returns))
        }

        return EvidenceBundle(
            format: EvidenceBundle.currentFormat, exportedAt: now, exportedBy: exportedBy,
            rollout: EvidenceBundle.Rollout(
                id: record.id, app: record.app, release: record.release, serial: record.serial, environment: record.environment,
                strategy: record.strategy, actor: record.actor, startedAt: record.startedAt, finishedAt: record.finishedAt,
                outcome: record.outcome?.rawValue, exitStatus: record.exitStatus, halted: record.halted, haltReason: record.haltReason,
                revertSerial: record.revertSerial, breakGlass: record.breakGlass, owner: record.owner ?? manifest.owner,
                notes: record.notes ?? manifest.notes, source: record.source ?? manifest.source, artifact: manifest.artifact),
            envelopes: envelopes, hosts: hosts, receipts: receipts)
    }

    /// The deployments and reverts of a rollout whose receipt the history lacks, per host.
    public static func missingReceipts(rolloutID: String, history: any HistoryStore) throws(ControllerError) -> [(host: String, deploymentID: String)] {
        guard let record = try history.rollout(id: rolloutID), let store = history as? any ReceiptStore else { return [] }
        var missing: [(host: String, deploymentID: String)] = []
        for host in record.hosts {
            for id in [host.deploymentID, host.revertDeploymentID].compactMap({ $0 }) where try store.receipt(host: host.host, deploymentID: id) == nil {
                missing.append((host.host, id))
            }
        }
        return missing
    }

    static func entry(
        _ envelope: Envelope, role: SentEnvelope.Role, policy: TrustPolicy, policyDigest: String?, returns: Set<String>
    ) -> EvidenceBundle.EnvelopeEntry {
        let asReturn = role == .revert || returns.contains(envelope.payloadDigest)
        var approvals: EvidenceBundle.Approvals
        switch Result(catching: { () throws(VerificationError) in try EnvelopeApproval.check(envelope, policy: policy, asReturn: asReturn) }) {
        case .success(let verified):
            approvals = EvidenceBundle.Approvals(
                signers: verified.signers, required: verified.requiredSignatures, isReturn: verified.isRollback,
                trustPolicySHA256: policyDigest, problem: nil)
        case .failure(let error):
            approvals = EvidenceBundle.Approvals(
                signers: [], required: 0, isReturn: asReturn, trustPolicySHA256: policyDigest, problem: error.errorInfo)
        }
        return EvidenceBundle.EnvelopeEntry(
            role: role, payloadDigest: envelope.payloadDigest, envelope: EvidenceBundle.EnvelopeDocument(envelope), approvals: approvals)
    }
}
