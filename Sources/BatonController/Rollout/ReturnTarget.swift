import BatonProtocol

/// Where a host can go back to: a release it holds with the manifest that release was
/// approved with. Shared by a halted rollout's revert, `baton rollout abort` and
/// `baton rollback`, so each says the same thing when a host cannot go back.
public enum ReturnTarget {
    /// How long a return the controller signs is valid: it is sent at once, and the
    /// trust policy's `maxValidity` is never shorter, so every environment accepts it.
    public static let validity = TrustPolicy.minimumMaxValidity

    /// The held release `release` on `host`, or why the host cannot return to it.
    /// `release` nil means the host has no earlier live release; `named` says an operator
    /// chose it (`--to`) rather than it being the release live before.
    public static func resolve(
        host: String, app: String, release: String?, named: Bool = false, status: AppStatus?
    ) -> Result<HeldRelease, ErrorInfo> {
        guard let status else {
            return .failure(ErrorInfo(code: "app_unknown", message: "\(host) has never run \(app)"))
        }
        guard let release else {
            return .failure(ErrorInfo(
                code: "no_previous_release",
                message: "\(host) ran no earlier release of \(app), so there is nothing to go back to"))
        }
        guard status.held != nil else {
            return .failure(ErrorInfo(
                code: AgentCallError.Code.tooOld.rawValue,
                message: "the agent on \(host) does not report the approved manifests of its releases; upgrade batond on it, then go back with `baton rollback \(app) --to \(release)`"))
        }
        guard let held = status.held?.first(where: { $0.release == release }) else {
            let others = (status.held ?? []).map(\.release).filter { $0 != status.current }
            return .failure(ErrorInfo(
                code: named ? "release_not_on_host" : "previous_release_gone",
                message: "\(host) does not hold \(release) with its approved manifest\(named ? "" : " (the release live before \(status.current ?? "now"))"), so it cannot return to it under the rollback threshold; "
                    + (others.isEmpty
                        ? "deploy \(release) again as a new release with the full approval"
                        : "choose one it holds with `baton rollback \(app) --to RELEASE` (\(others.joined(separator: ", "))), or deploy \(release) again with the full approval")))
        }
        return .success(held)
    }
}
