#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Who and where this host is.
public struct HostIdentity: Sendable, Equatable {
    /// The host's id. Agents always know it; `nil` (a person checking an envelope
    /// without naming a host) skips the `targets` check.
    public var hostID: String?
    public var environment: String

    public init(hostID: String?, environment: String) {
        self.hostID = hostID
        self.environment = environment
    }
}

/// What the host remembers of one app, for replay protection and rollback thresholds.
public struct AppHistory: Sendable, Equatable {
    /// The serial of the last manifest accepted for the app.
    public var lastSerial: UInt64?
    /// `Envelope.payloadDigest` of that manifest.
    public var lastPayloadDigest: String?
    /// The releases this host can return to, each with the manifest it was approved with
    /// under the environment's full threshold: releases that succeeded here and that the
    /// host still holds (release directory and approved manifest on disk, pruned
    /// together). A manifest naming one of them that equals its approved manifest in
    /// everything but `serial`, `issuedAt`, `expiresAt` and `notes` is a return and needs
    /// only `rollbackThreshold`; anything else needs the full threshold.
    public var approvedReleases: [String: Manifest]

    public init(lastSerial: UInt64? = nil, lastPayloadDigest: String? = nil, approvedReleases: [String: Manifest] = [:]) {
        self.lastSerial = lastSerial
        self.lastPayloadDigest = lastPayloadDigest
        self.approvedReleases = approvedReleases
    }

    public static let none = AppHistory()
}

/// One key whose valid signature counted.
public struct Signer: Sendable, Equatable, Codable {
    public var keyid: String
    /// The names the trust policy gives this key.
    public var names: [String]

    public init(keyid: String, names: [String]) {
        self.keyid = keyid
        self.names = names
    }
}

/// A manifest that passed every check, with the facts the checks established.
public struct VerifiedManifest: Sendable, Equatable {
    public var manifest: Manifest
    /// The exact bytes that were signed and parsed.
    public var payload: [UInt8]
    public var payloadDigest: String
    /// Distinct trusted keys (for the manifest's environment) with valid signatures.
    public var signers: [Signer]
    /// True when the manifest is a return to a release the host holds, matching the
    /// manifest that release was approved with, so `rollbackThreshold` applied.
    public var isRollback: Bool
    /// For a return: the manifest the release was approved with. The agent runs this
    /// one (it differs from `manifest` only in `serial`, `issuedAt`, `expiresAt`, `notes`).
    public var approved: Manifest?
    /// How many distinct signatures were required.
    public var requiredSignatures: Int
    /// A change freeze was in force and the manifest passed because it was signed to
    /// break glass. Whoever records the deployment says so.
    public var breakGlass: Bool = false
}

/// The single entry point that decides whether a host may act on an envelope.
///
/// The order of checks is part of the protocol (`Protocol/PROTOCOL.md`): size and shape,
/// signatures over the PAE of the envelope's own payloadType, then the payloadType, and
/// only then is the payload (the verified bytes, never anything else) parsed and checked
/// against the host: environment, targets, the environment's policy bounds (required
/// targets, longest validity), signature threshold, serial, time, and last a change
/// freeze (which a return passes, and a manifest signed to break glass).
public enum ManifestVerifier {
    /// How far `issuedAt` may lie in the future (clock skew between signer and host).
    public static let allowedClockSkew: TimeInterval = 300

    public static func verify<D: DataProtocol>(
        envelope bytes: D,
        policy: TrustPolicy,
        host: HostIdentity,
        history: (String) -> AppHistory,
        now: Date
    ) throws(VerificationError) -> VerifiedManifest {
        let envelope = try Envelope.parse(bytes)
        return try verify(envelope: envelope, policy: policy, host: host, history: history, now: now)
    }

    public static func verify(
        envelope: Envelope,
        policy: TrustPolicy,
        host: HostIdentity,
        history: (String) -> AppHistory,
        now: Date
    ) throws(VerificationError) -> VerifiedManifest {
        let validKeys = try validSigningKeys(envelope, policy: policy)

        guard envelope.payloadType == Manifest.payloadType else {
            throw VerificationError(
                .unsupportedType, "payloadType '\(envelope.payloadType)' is not '\(Manifest.payloadType)'")
        }

        let manifest = try Manifest.parse(payload: envelope.payload)

        guard manifest.environment == host.environment else {
            throw VerificationError(
                .wrongEnvironment,
                "the manifest is for environment '\(manifest.environment)' but this host\(host.hostID.map { " '\($0)'" } ?? "") is in '\(host.environment)'")
        }
        if let targets = manifest.targets, let hostID = host.hostID, !targets.contains(hostID) {
            throw VerificationError(.notTargeted, "host '\(hostID)' is not among the manifest's targets")
        }

        guard let environment = policy.environments[manifest.environment] else {
            throw VerificationError(
                .untrustedKey, "the trust policy trusts no key for environment '\(manifest.environment)'")
        }
        // The policy's own bounds on what a manifest for the environment may claim, before
        // any signature is counted: they hold for returns as much as for new releases.
        if environment.requireTargets, manifest.targets == nil {
            throw VerificationError(
                .targetsRequired,
                "the trust policy requires manifests for '\(manifest.environment)' to name their targets; without them this one could be replayed to any host of the environment until it expires (`baton release create --target HOST`)")
        }
        if let limit = environment.maxValidity, manifest.expiresAt.timeIntervalSince(manifest.issuedAt) > limit.seconds {
            throw VerificationError(
                .validityTooLong,
                "the manifest is valid from \(RFC3339.format(manifest.issuedAt)) to \(RFC3339.format(manifest.expiresAt)), longer than the \(limit) the trust policy allows for '\(manifest.environment)'; issue it with a shorter --expires-in")
        }
        let counted = validKeys.intersection(policy.verifyingKeys(for: manifest.environment))
        let appHistory = history(manifest.app)
        let approved = appHistory.approvedReleases[manifest.release]
        let differences = approved.map { manifest.returnDifferences(from: $0) } ?? []
        let isRollback = approved != nil && differences.isEmpty
        let required = isRollback ? environment.rollbackThreshold : environment.threshold
        if counted.isEmpty {
            let names = validKeys.flatMap { policy.names(of: $0) }.sorted()
            throw VerificationError(
                .untrustedKey,
                "signed by \(names.joined(separator: ", ")), but no key that counts for '\(manifest.environment)' signed it")
        }
        if counted.count < required {
            if approved != nil, !differences.isEmpty, counted.count >= environment.rollbackThreshold {
                throw VerificationError(
                    .returnMismatch,
                    "a return to \(manifest.release) must carry the manifest it was approved with; this one differs in \(differences.joined(separator: ", ")), so it needs the full \(required) signatures for '\(manifest.environment)' (it has \(counted.count)); build the return from the approved manifest, or have it approved as a new release")
            }
            throw VerificationError(
                .thresholdNotMet,
                "\(counted.count) of the \(required) distinct signatures required for '\(manifest.environment)'\(isRollback ? " (return to a release held here)" : ""); another approver must sign with `baton manifest sign`")
        }

        let digest = envelope.payloadDigest
        if let last = appHistory.lastSerial {
            if manifest.serial < last {
                throw VerificationError(
                    .staleSerial,
                    "serial \(manifest.serial) is lower than \(last), the last accepted for '\(manifest.app)'; issue a manifest with a higher serial")
            }
            if manifest.serial == last {
                if digest == appHistory.lastPayloadDigest {
                    throw VerificationError(.duplicate, "this manifest (serial \(last)) was already accepted")
                }
                throw VerificationError(
                    .serialConflict,
                    "serial \(last) was already accepted for '\(manifest.app)' with different content; issue a manifest with a higher serial")
            }
        }

        if manifest.issuedAt.timeIntervalSince(now) > allowedClockSkew {
            throw VerificationError(
                .notYetValid, "issuedAt \(RFC3339.format(manifest.issuedAt)) is in the future; check the clocks")
        }
        if now >= manifest.expiresAt {
            throw VerificationError(
                .expired, "the manifest expired at \(RFC3339.format(manifest.expiresAt)); sign a new one")
        }

        let breakGlass = try checkFreeze(
            manifest, environment: environment, policy: policy, validKeys: validKeys, counted: counted,
            isReturn: isRollback, now: now)

        let signers = counted.map { Signer(keyid: $0.keyid, names: policy.names(of: $0)) }.sorted { $0.keyid < $1.keyid }
        return VerifiedManifest(
            manifest: manifest, payload: envelope.payload, payloadDigest: digest, signers: signers,
            isRollback: isRollback, approved: isRollback ? approved : nil, requiredSignatures: required,
            breakGlass: breakGlass)
    }

    /// The last check: a change freeze. Returns stay open during a freeze (they restore
    /// what ran before, and a revert must never be blocked by the calendar); anything
    /// else needs the break-glass signatures. True when the manifest passed by breaking
    /// glass.
    static func checkFreeze(
        _ manifest: Manifest, environment: TrustPolicy.Environment, policy: TrustPolicy, validKeys: Set<VerifyingKey>,
        counted: Set<VerifyingKey>, isReturn: Bool, now: Date
    ) throws(VerificationError) -> Bool {
        guard !isReturn, let freeze = policy.activeFreeze(of: manifest.environment, at: now) else { return false }
        if breaksGlass(environment: environment, policy: policy, validKeys: validKeys, counted: counted) { return true }
        throw VerificationError(
            .changeFrozen,
            "\(freeze.summary); only returns to a release a host holds go out, or a manifest signed to break glass: \(environment.breakGlassRequirement), \(counted.count) signed this one (`baton manifest sign`)")
    }

    /// Whether the valid signatures on a manifest meet the environment's break-glass rule.
    public static func breaksGlass(
        environment: TrustPolicy.Environment, policy: TrustPolicy, validKeys: Set<VerifyingKey>, counted: Set<VerifyingKey>
    ) -> Bool {
        if let names = environment.breakGlassKeys {
            return counted.count >= environment.threshold && names.allSatisfy { name in policy.keys[name].map { validKeys.contains($0) } ?? false }
        }
        return counted.count >= environment.threshold + 1
    }

    /// What a person planning a rollout needs to know about a freeze: the freeze in force
    /// for the envelope's environment at `now` (nil when none), and whether this
    /// envelope's valid signatures break glass.
    public static func freezeStatus(
        envelope: Envelope, manifest: Manifest, policy: TrustPolicy, now: Date
    ) -> (freeze: ActiveFreeze, breaksGlass: Bool, requirement: String)? {
        guard let environment = policy.environments[manifest.environment],
            let freeze = policy.activeFreeze(of: manifest.environment, at: now)
        else { return nil }
        let valid = (try? validSigningKeys(envelope, policy: policy)) ?? []
        let counted = valid.intersection(policy.verifyingKeys(for: manifest.environment))
        return (
            freeze, breaksGlass(environment: environment, policy: policy, validKeys: valid, counted: counted),
            environment.breakGlassRequirement
        )
    }

    /// The distinct trusted keys with a valid signature over the envelope's PAE.
    /// A `keyid` is only a hint for which key to try first; it is never trusted.
    static func validSigningKeys(_ envelope: Envelope, policy: TrustPolicy) throws(VerificationError) -> Set<VerifyingKey> {
        guard !policy.keys.isEmpty else {
            throw VerificationError(.untrustedKey, "no trusted keys are loaded, so every manifest is refused")
        }
        guard !envelope.signatures.isEmpty else {
            throw VerificationError(.thresholdNotMet, "the envelope carries no signatures; sign it with `baton manifest sign`")
        }
        let trusted = Set(policy.keys.values)
        let byKeyID = Dictionary(trusted.map { ($0.keyid, $0) }, uniquingKeysWith: { a, _ in a })
        let message = envelope.preAuthenticationEncoding
        var valid = Set<VerifyingKey>()
        var claimedTrustedButInvalid = false
        for signature in envelope.signatures {
            if let keyid = signature.keyid, let hinted = byKeyID[keyid] {
                if hinted.isValidSignature(signature.sig, for: message) {
                    valid.insert(hinted)
                } else {
                    claimedTrustedButInvalid = true
                }
                continue
            }
            // No usable hint: try every trusted key not yet counted.
            if let key = trusted.subtracting(valid).first(where: { $0.isValidSignature(signature.sig, for: message) }) {
                valid.insert(key)
            }
        }
        if valid.isEmpty {
            if claimedTrustedButInvalid {
                throw VerificationError(
                    .signatureInvalid, "a signature names a trusted key but does not verify: the envelope was altered or signed over other bytes")
            }
            throw VerificationError(.untrustedKey, "no signature comes from a key in the trust policy")
        }
        return valid
    }
}

extension Envelope {
    /// Adds `key`'s signature over this envelope. Signing twice with one key changes
    /// nothing: Ed25519 is deterministic and a key counts once anyway.
    public mutating func sign(with key: SigningKey) {
        let keyid = key.keyid
        let message = preAuthenticationEncoding
        let verifying = key.verifyingKey
        if signatures.contains(where: { $0.keyid == keyid || verifying.isValidSignature($0.sig, for: message) }) {
            return
        }
        signatures.append(Signature(keyid: keyid, sig: key.signature(for: message)))
    }
}
