import BatonProtocol
import Foundation

/// What `baton rollback` checks and asks before anything changes: that the controller's key
/// can sign a return the agents accept, and where each host can go back to.
public struct RollbackPreparation: Sendable {
    public var app: String
    public var environment: String
    /// The release asked for (`--to`); nil: each host's previous one.
    public var release: String?
    public var plan: RollbackPlan.Plan
    /// Hosts that did not answer: they are not rolled back.
    public var unreachable: [(host: String, error: ErrorInfo)]
    /// How the history names the signer of every return.
    public var signer: String

    /// Every host that could not be asked or cannot go back: the rollback is incomplete.
    public var isPartial: Bool { !unreachable.isEmpty || !plan.refused.isEmpty }

    /// The controller's key, if the agents of `environment` will accept a return it signs
    /// alone: trusted there, and a rollback threshold of one. Without a trust policy there is
    /// nothing to check against.
    public static func signingKey(_ key: SigningKey?, environment: String, policy: TrustPolicy?) throws(ControllerError) -> SigningKey {
        guard let key else {
            throw ControllerError(.signingFailed, "no controller signing key: set signingKey in baton.yaml, BATON_SIGNING_KEY or --signing-key")
        }
        if let policy, let env = policy.environments[environment] {
            guard env.keys.contains(where: { policy.keys[$0]?.keyid == key.keyid }) else {
                throw ControllerError(
                    .untrustedKey,
                    "the controller's signing key (keyid \(key.keyid)) is not trusted for \(environment) in the trust policy; agents would refuse the rollback")
            }
            guard env.rollbackThreshold <= 1 else {
                throw ControllerError(
                    .thresholdNotMet,
                    "\(environment) needs \(env.rollbackThreshold) signatures for a rollback; sign a rollback manifest with `baton manifest sign` by that many approvers and roll it out instead")
            }
        }
        return key
    }

    /// Asks every host for the app's state, in parallel, and plans the returns of those that answered.
    public static func prepare(
        app: String, environment: String, to release: String?, hosts: [Fleet.Host], key: SigningKey, controllerSerial: UInt64,
        makeClient: AgentClientFactory
    ) async throws(ControllerError) -> RollbackPreparation {
        let (statuses, unreachable) = try await withAgentClient(for: hosts, retry: .quick, using: makeClient) { client in
            await Self.statuses(client: client, hosts: hosts, app: app)
        }
        let plan = RollbackPlan.make(
            app: app, environment: environment, to: release, hosts: hosts.filter { host in !unreachable.contains { $0.host == host.id } },
            statuses: statuses, controllerSerial: controllerSerial, key: key)
        return RollbackPreparation(
            app: app, environment: environment, release: release, plan: plan, unreachable: unreachable, signer: "controller:\(key.keyid.prefix(12))")
    }

    /// One rollout per group of hosts going back to the same approved manifest: at once,
    /// never halting (each host's return is its own), and never reverting a return.
    /// `nothing_to_roll_back` when no host can go back.
    public func requests() throws(ControllerError) -> [RolloutRequest] {
        guard !plan.groups.isEmpty else {
            throw ControllerError(.nothingToRollBack, "no host of \(environment) can be rolled back\(release.map { " to \($0)" } ?? "")")
        }
        var strategy = RolloutStrategy()
        strategy.failureThreshold = .percent(100)
        strategy.autoRevert = false
        return plan.groups.map { group in
            var request = RolloutRequest(
                rolloutID: RolloutRequest.newID(app: app), envelope: group.envelope, manifest: group.manifest, hosts: group.hosts,
                strategy: strategy, artifactFile: nil, revertKey: nil)
            request.kind = .rollback
            return request
        }
    }

    static func statuses(client: any AgentClient, hosts: [Fleet.Host], app: String, fanOut: FanOut = .quick) async
        -> ([String: AppStatus], [(host: String, error: ErrorInfo)])
    {
        var statuses: [String: AppStatus] = [:]
        var unreachable: [(host: String, error: ErrorInfo)] = []
        for answer in await fanOut.ask(hosts, { host throws(AgentCallError) in try await client.appStatus(host, app: app) }) {
            switch answer.result {
            case .success(let status): if let status { statuses[answer.host.id] = status }
            case .failure(let error): unreachable.append((answer.host.id, error.info))
            }
        }
        return (statuses, unreachable)
    }
}
