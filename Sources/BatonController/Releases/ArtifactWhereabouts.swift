import BatonProtocol
import Foundation

/// Whether this controller can get a manifest's artifact to the agents, checked before
/// any host is contacted. The bytes are reachable when the operator gives the file, when
/// this controller's state directory holds them, or when the manifest has a `url` the
/// agents fetch from. Otherwise they are in another controller's state directory (the
/// one that ran `release create`, as the registry records), and the rollout is refused
/// with `artifact_elsewhere` naming that controller, never left to fail on every agent.
public enum ArtifactWhereabouts {
    public static func check(
        _ manifest: Manifest, artifactFile: String?, state: ControllerState, registry: (any ReleaseRegistry)?
    ) throws(ControllerError) {
        let artifact = manifest.artifact
        if artifactFile != nil || artifact.url != nil || state.hasArtifact(artifact.sha256) { return }
        let holders = try registry?.registeredReleases(artifactSHA256: artifact.sha256) ?? []
        guard let holder = holders.first(where: { $0.artifactHolder != nil }), let who = holder.artifactHolder else {
            throw ControllerError(
                .artifactMissing,
                "the controller does not hold artifact sha256:\(artifact.sha256) and the manifest has no url; pass --artifact FILE")
        }
        throw ControllerError(
            .artifactElsewhere,
            "the artifact of \(manifest.app) \(manifest.release) (sha256:\(artifact.sha256), \(artifact.size) bytes) is held by \(who) at \(holder.artifactPath ?? "its state directory") (registered by `release create`), not by this controller (\(state.root)), and the manifest has no url for agents to fetch: copy the file here and pass --artifact FILE, or run the rollout from \(who)")
    }
}

extension ArtifactWhereabouts {
    /// The same check for an envelope's bytes; an envelope that does not parse is left to
    /// the rollout's preflight, which says what is wrong with it.
    public static func check(
        envelope: [UInt8], artifactFile: String?, state: ControllerState, registry: (any ReleaseRegistry)?
    ) throws(ControllerError) {
        guard let envelope = try? Envelope.parse(envelope), let manifest = try? Manifest.parse(payload: envelope.payload) else { return }
        try check(manifest, artifactFile: artifactFile, state: state, registry: registry)
    }
}
