import BatonProtocol
import Foundation

extension RolloutPlanner {
    /// The change freeze a plan runs into, as `baton plan --json` writes it on every host's
    /// row: which environment, until when, why, and whether the envelope breaks glass.
    public struct PlannedFreeze: Codable, Sendable, Equatable {
        public var environment: String
        public var until: Date
        /// Each window's reason and schedule: `end-of-year trading; 2026-12-20T00:00:00Z to …`.
        public var windows: [String]
        public var reasons: [String]
        public var breaksGlass: Bool
        /// What breaking glass takes in this environment.
        public var requirement: String
    }

    /// The freeze of the manifest's environment in force at `now`, or nil.
    public static func freeze(envelope bytes: [UInt8], manifest: Manifest, policy: TrustPolicy?, now: Date = Date()) -> PlannedFreeze? {
        guard let policy, let envelope = try? Envelope.parse(bytes),
            let status = ManifestVerifier.freezeStatus(envelope: envelope, manifest: manifest, policy: policy, now: now)
        else { return nil }
        return PlannedFreeze(
            environment: status.freeze.environment, until: status.freeze.until,
            windows: status.freeze.windows.map { "\($0.reason); \($0.summary)" }, reasons: status.freeze.windows.map(\.reason),
            breaksGlass: status.breaksGlass, requirement: status.requirement)
    }
}

extension RolloutRequest {
    /// A resumed rollout meets the change freezes in force now, not those of when it
    /// started: refused (`change_frozen`) before any agent is contacted unless its envelope
    /// breaks glass, in which case it goes on marked as break-glass.
    public mutating func recheckFreeze(policy: TrustPolicy?, now: Date = Date()) throws(ControllerError) {
        guard let freeze = RolloutPlanner.freeze(envelope: envelope, manifest: manifest, policy: policy, now: now) else { return }
        guard freeze.breaksGlass else {
            throw ControllerError(
                .changeFrozen,
                "rollout \(rolloutID) cannot be resumed: environment \(freeze.environment) is frozen until \(RFC3339.format(freeze.until)) (\(freeze.reasons.joined(separator: "; "))); its envelope does not break glass (that takes \(freeze.requirement)); `baton rollout abort \(rolloutID)` still takes its hosts back")
        }
        breakGlass = true
    }
}
