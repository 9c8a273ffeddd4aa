import BatonProtocol

/// A failure of the controller itself, before or around talking to agents, with a stable
/// code. The CLI prints `error: <code>: <message>`; the rollout summary carries the code.
public struct ControllerError: CodedError, Equatable {
    public enum Code: String, Sendable, CaseIterable {
        /// A certificate, key or CA file named by the configuration is missing or unreadable.
        case credentialsMissing = "credentials_missing"
        /// Such a file does not hold what it should.
        case credentialsInvalid = "credentials_invalid"
        /// The controller configuration is incomplete or contradicts itself.
        case configurationInvalid = "configuration_invalid"
        /// No host matches the selection.
        case noHosts = "no_hosts"
        /// A rollout strategy that contradicts itself or could never deploy a host.
        case invalidStrategy = "invalid_strategy"
        /// The envelope cannot be read, or fails the local trust policy check.
        case envelopeInvalid = "envelope_invalid"
        /// The envelope's environment is not the one asked for.
        case wrongEnvironment = "wrong_environment"
        /// The artifact file's digest or size differs from the manifest's.
        case artifactMismatch = "artifact_mismatch"
        /// The manifest's artifact is neither in the controller's store nor given.
        case artifactMissing = "artifact_missing"
        /// Reading or writing the controller's state directory failed.
        case stateError = "state_error"
        /// The controller's certificate expires within the warning period.
        case certificateExpiring = "certificate_expiring"
        /// A file the configuration or the command names does not exist.
        case fileNotFound = "file_not_found"
        /// Such a file exists but cannot be read.
        case fileUnreadable = "file_unreadable"
        /// A file the controller would make exists already (it never overwrites).
        case fileExists = "file_exists"
        /// The app file for the app cannot be found.
        case appUnknown = "app_unknown"
        /// An app, release or environment name that breaks the one naming rule
        /// (`Name.pattern`): refused before it can become part of a path.
        case invalidName = "invalid_name"
        /// The app file's `app:` is not the app its file name says.
        case appFileMismatch = "app_file_mismatch"
        /// A fleet host's environment is not in the trust policy.
        case unknownEnvironment = "unknown_environment"
        /// The app's rollout lock is held by another rollout.
        case lockHeld = "lock_held"
        /// Signing a manifest failed (no signing key configured, say).
        case signingFailed = "signing_failed"
        /// A rollout id that the state directory does not know.
        case rolloutUnknown = "rollout_unknown"
        /// A release asked to be valid for longer than its environment's `maxValidity`.
        case validityTooLong = "validity_too_long"
        /// `resume` or `abort` of a rollout that already ended.
        case rolloutFinished = "rollout_finished"
        /// The controller's signing key is not trusted for the environment, so agents
        /// would refuse what it signs.
        case untrustedKey = "untrusted_key"
        /// The environment needs more signatures than the controller's key alone.
        case thresholdNotMet = "threshold_not_met"
        /// A rollback found no host that can go back.
        case nothingToRollBack = "nothing_to_roll_back"
        /// A change freeze of the trust policy is in force for the environment and the
        /// envelope is not signed to break glass (the verifier's `change_frozen`).
        case changeFrozen = "change_frozen"
        /// `APP@RELEASE` names no release registered in the history store.
        case releaseUnknown = "release_unknown"
        /// A release registered under a serial that another payload already has.
        case releaseConflict = "release_conflict"
        /// The artifact's bytes are in another controller's state directory, this one has
        /// no copy and the manifest has no `url`: no agent could get them.
        case artifactElsewhere = "artifact_elsewhere"
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var reportedCode: String { code.rawValue }

    public var description: String { "\(code.rawValue): \(message)" }

    /// Checks a name an operator typed (an app, a release, an environment) by the rule
    /// every file and manifest follows, so `../evil` or `we/b` never reaches a path.
    /// `what` names it in the message: "app", "release".
    @discardableResult
    public static func checkName(_ name: String, _ what: String) throws(ControllerError) -> String {
        guard Name.isValid(name) else {
            throw ControllerError(
                .invalidName,
                "'\(name)' is not a valid \(what) name: it must match \(Name.pattern) (lowercase letters, digits, '.', '_', '-'; at most 64)")
        }
        return name
    }
}
