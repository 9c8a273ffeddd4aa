import BatonProtocol

/// A failure of the controller itself, before or around talking to agents, with a stable
/// code. The CLI prints `error: <code>: <message>`; the rollout summary carries the code.
public struct ControllerError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// A certificate, key or CA file named by the configuration is missing or unreadable.
        case credentialsMissing = "credentials_missing"
        /// Such a file does not hold what it should.
        case credentialsInvalid = "credentials_invalid"
        /// The controller configuration is incomplete or contradicts itself.
        case configurationInvalid = "configuration_invalid"
        /// No host matches the selection.
        case noHosts = "no_hosts"
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
        /// The app file for the app cannot be found.
        case appUnknown = "app_unknown"
        /// The app's rollout lock is held by another rollout.
        case lockHeld = "lock_held"
        /// Signing a manifest failed (no signing key configured, say).
        case signingFailed = "signing_failed"
        /// A rollout id that the state directory does not know.
        case rolloutUnknown = "rollout_unknown"
        /// A release asked to be valid for longer than its environment's `maxValidity`.
        case validityTooLong = "validity_too_long"
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

extension ConfigurationError {
    /// The one-line form operators see, with file and line.
    public var operatorMessage: String {
        switch (file, line) {
        case let (file?, line?): "\(file):\(line): \(message)"
        case let (file?, nil): "\(file): \(message)"
        default: message
        }
    }
}
