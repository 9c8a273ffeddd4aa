import BatonProtocol
import Foundation

/// Registered releases as commands name them (`APP@RELEASE`), their approvals counted
/// against the trust policy, and the envelope a rollout assembles from them.
public enum ReleaseApprovals {
    /// Splits `web@v2` into app and release, each checked by the one naming rule.
    public static func parseReference(_ text: String) throws(ControllerError) -> (app: String, release: String) {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2 else {
            throw ControllerError(.invalidName, "'\(text)' is not APP@RELEASE (e.g. web@v2)")
        }
        return (try ControllerError.checkName(String(parts[0]), "app"), try ControllerError.checkName(String(parts[1]), "release"))
    }

    /// Whether `text` is meant as `APP@RELEASE` rather than a file (a rollout's argument).
    public static func looksLikeReference(_ text: String) -> Bool {
        !text.contains("/") && text.split(separator: "@", omittingEmptySubsequences: false).count == 2
            && !FileManager.default.fileExists(atPath: text)
    }

    /// The newest registration of `reference`, in `environment` when given; one that
    /// exists in several environments must be told apart.
    public static func resolve(_ reference: String, environment: String?, in registry: any ReleaseRegistry) throws(ControllerError) -> RegisteredRelease {
        let (app, release) = try parseReference(reference)
        if let environment { try ControllerError.checkName(environment, "environment") }
        let found = try registry.registeredRelease(app: app, release: release, environment: environment)
        guard let newest = found.first else {
            throw ControllerError(
                .releaseUnknown,
                "no release \(reference)\(environment.map { " for \($0)" } ?? "") is registered in the history store; `baton release create` registers one, `baton release list` shows them")
        }
        let environments = Set(found.map(\.environment))
        guard environments.count == 1 else {
            throw ControllerError(
                .wrongEnvironment,
                "\(reference) is registered for \(environments.sorted().joined(separator: " and ")); name one with --environment")
        }
        return newest
    }

    /// Where a release stands against its environment's threshold.
    public struct Status: Sendable, Equatable, Codable {
        public var threshold: Int
        /// The trusted keys (their first name, else the keyid) whose signatures verify, in
        /// the order they approved.
        public var approvedBy: [String]
        /// The environment's keys that have not approved yet.
        public var missing: [String]
        /// Approvals that do not count: a key not trusted for the environment, or a
        /// signature that does not verify over the registered payload.
        public var ignored: [String]

        public init(threshold: Int, approvedBy: [String], missing: [String], ignored: [String]) {
            self.threshold = threshold
            self.approvedBy = approvedBy
            self.missing = missing
            self.ignored = ignored
        }

        public var isMet: Bool { approvedBy.count >= threshold }

        /// `1 of 2 (alice)`.
        public var summary: String {
            "\(approvedBy.count) of \(threshold)\(approvedBy.isEmpty ? "" : " (\(approvedBy.joined(separator: ", ")))")"
        }
    }

    /// Counts `approvals` of `release` as an agent would: only distinct keys the policy
    /// trusts for the environment, only signatures that verify over the payload.
    public static func status(of release: RegisteredRelease, approvals: [ReleaseApproval], policy: TrustPolicy) -> Status {
        let environment = policy.environments[release.environment]
        let counting = policy.verifyingKeys(for: release.environment)
        let message = Envelope.preAuthenticationEncoding(payloadType: Manifest.payloadType, payload: release.payload)
        var counted: [VerifyingKey] = []
        var ignored: [String] = []
        for approval in approvals {
            let key = counting.first { $0.keyid == approval.keyid }
            guard let key, key.isValidSignature(approval.signature, for: message) else {
                ignored.append("\(approval.keyid.prefix(12)) by \(approval.approvedBy)")
                continue
            }
            if !counted.contains(key) { counted.append(key) }
        }
        func name(_ key: VerifyingKey) -> String { policy.names(of: key).first ?? key.keyid }
        let missing = (environment?.keys ?? []).filter { named in
            guard let key = policy.keys[named] else { return false }
            return !counted.contains(key)
        }
        return Status(threshold: environment?.threshold ?? 1, approvedBy: counted.map(name), missing: missing, ignored: ignored)
    }

    /// The approval `key` gives `release`. Refused (`untrusted_key`) when the policy does
    /// not count the key for the release's environment: its signature would count for nothing.
    public static func approve(
        _ release: RegisteredRelease, with key: SigningKey, policy: TrustPolicy?, by actor: String, now: Date
    ) throws(ControllerError) -> ReleaseApproval {
        if let policy, !policy.verifyingKeys(for: release.environment).contains(key.verifyingKey) {
            throw ControllerError(
                .untrustedKey,
                "key \(key.keyid.prefix(12)) is not one the trust policy counts for '\(release.environment)' (\(policy.environments[release.environment]?.keys.joined(separator: ", ") ?? "no keys")); its approval would count for nothing")
        }
        let message = Envelope.preAuthenticationEncoding(payloadType: Manifest.payloadType, payload: release.payload)
        return ReleaseApproval(
            app: release.app, environment: release.environment, serial: release.serial, keyid: key.keyid,
            signature: key.signature(for: message), approvedBy: actor, approvedAt: now)
    }

    /// The envelope of `release` with every approval's signature, as `manifest sign` would
    /// have made it: what `baton rollout APP@RELEASE` sends.
    public static func envelope(_ release: RegisteredRelease, approvals: [ReleaseApproval]) -> Envelope {
        Envelope(
            payloadType: Manifest.payloadType, payload: release.payload,
            signatures: approvals.map { Envelope.Signature(keyid: $0.keyid, sig: $0.signature) })
    }

    /// The envelope `baton rollout APP@RELEASE` rolls out: refused with `threshold_not_met`,
    /// naming who has approved and who may still, until the environment's threshold is met.
    public static func approvedEnvelope(
        _ reference: String, environment: String?, registry: any ReleaseRegistry, policy: TrustPolicy?
    ) throws(ControllerError) -> (release: RegisteredRelease, envelope: [UInt8]) {
        let release = try resolve(reference, environment: environment, in: registry)
        let approvals = try registry.approvals(app: release.app, environment: release.environment, serial: release.serial)
        if let policy {
            let status = status(of: release, approvals: approvals, policy: policy)
            guard status.isMet else {
                throw ControllerError(
                    .thresholdNotMet,
                    "\(release.reference) (\(release.environment), serial \(release.serial)) has \(status.summary) approvals; \(status.threshold - status.approvedBy.count) more needed from \(status.missing.joined(separator: ", ")): `baton approve \(release.reference) --key KEY`")
            }
        }
        return (release, Array(envelope(release, approvals: approvals).serialized(pretty: false)))
    }
}

extension ReleaseApprovals {
    /// The approvals carried by an envelope signed elsewhere (`baton manifest sign` on the
    /// manifest file, an offline key): only over the registered payload's exact bytes, and
    /// only signatures that verify with a key the policy counts for the environment.
    public static func imported(
        _ envelopeBytes: [UInt8], into release: RegisteredRelease, policy: TrustPolicy, by actor: String, now: Date
    ) throws(ControllerError) -> [ReleaseApproval] {
        let envelope: Envelope
        do { envelope = try Envelope.parse(envelopeBytes) } catch {
            throw ControllerError(.envelopeInvalid, "not an envelope: \(error.message)")
        }
        guard envelope.payloadDigest == release.payloadSHA256 else {
            throw ControllerError(
                .envelopeInvalid,
                "the envelope signs another manifest (sha256:\(envelope.payloadDigest)) than \(release.reference) (serial \(release.serial), sha256:\(release.payloadSHA256))")
        }
        let message = envelope.preAuthenticationEncoding
        let counting = policy.verifyingKeys(for: release.environment)
        var approvals: [ReleaseApproval] = []
        for signature in envelope.signatures {
            guard let key = counting.first(where: { $0.isValidSignature(signature.sig, for: message) }),
                  !approvals.contains(where: { $0.keyid == key.keyid })
            else { continue }
            approvals.append(ReleaseApproval(
                app: release.app, environment: release.environment, serial: release.serial, keyid: key.keyid, signature: signature.sig,
                approvedBy: actor, approvedAt: now))
        }
        guard !approvals.isEmpty else {
            throw ControllerError(.untrustedKey, "no signature on the envelope verifies with a key the trust policy counts for '\(release.environment)'")
        }
        return approvals
    }
}
