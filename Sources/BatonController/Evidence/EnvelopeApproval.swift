import BatonProtocol
import Foundation

/// Checks an envelope a rollout sent against a trust policy, offline: its signatures, the
/// environment's threshold (`rollbackThreshold` for a return), and its own validity, as an
/// agent would have at the moment it was issued. What the history of a host would add (the
/// serial, whether a return really matches the release's approved manifest) is what the
/// agents checked when they accepted it, and their receipts say so.
enum EnvelopeApproval {
    static func check(_ envelope: Envelope, policy: TrustPolicy, asReturn: Bool) throws(VerificationError) -> VerifiedManifest {
        // Read unverified only to know the environment and time to check at; the verifier
        // checks the signatures before it trusts a byte of it.
        let manifest = try? Manifest.parse(payload: envelope.payload)
        let history = AppHistory(approvedReleases: asReturn ? manifest.map { [$0.release: $0] } ?? [:] : [:])
        return try ManifestVerifier.verify(
            envelope: envelope, policy: policy,
            host: HostIdentity(hostID: nil, environment: manifest?.environment ?? ""),
            history: { _ in history }, now: manifest?.issuedAt ?? Date(timeIntervalSince1970: 0))
    }
}
