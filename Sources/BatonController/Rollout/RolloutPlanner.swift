import BatonProtocol
import Foundation

/// `baton plan`: what a rollout would do, host by host, without changing anything
/// anywhere (only `GET` and `HEAD` reach the agents). Each host's verdict comes from the
/// agent's own verifier, run here on what the agent reports (its environment, last
/// serial, the releases that succeeded there), against the controller's copy of the
/// trust policy: the refusals a rollout would meet, foreseen.
public enum RolloutPlanner {
    public struct PlannedHost: Codable, Sendable, Equatable {
        public var host: String
        public var wave: String?
        public var current: String?
        public var target: String
        public var reachable: Bool
        /// The artifact would be uploaded (the agent holds neither the release nor the artifact).
        public var upload: Bool?
        /// The agent lacks the artifact and, with no file to send (`--fetch`, or the controller
        /// does not hold it), would fetch the manifest's `artifact.url` itself; `upload` is
        /// then false (`--json`).
        public var fetch: Bool?
        /// `deploy`, `already` (an identical resend: nothing would change), or `refused`.
        public var action: String
        public var error: ErrorInfo?
        /// The change freeze in force for the environment, when there is one (`--json`).
        public var freeze: PlannedFreeze?
    }

    /// What a host reports that the plan needs.
    struct Probe: Sendable {
        var health: AgentHealth
        var status: AppStatus?
        /// The agent holds the artifact (in its cache or as an installed release).
        var holdsArtifact: Bool
    }

    public static func plan(
        envelope bytes: [UInt8], manifest: Manifest, hosts: [Fleet.Host], strategy: RolloutStrategy, policy: TrustPolicy?,
        client: any AgentClient, fanOut: FanOut = .quick, now: Date = Date()
    ) async -> [PlannedHost] {
        let envelope = try? Envelope.parse(bytes)
        let answers = await fanOut.ask(hosts) { host throws(AgentCallError) in
            let health = try await client.health(host)
            let status = try await client.appStatus(host, app: manifest.app)
            let installed = status?.releaseArtifacts?[manifest.release]?.sha256 == manifest.artifact.sha256
            let holds = installed ? true : try await client.hasArtifact(host, sha256: manifest.artifact.sha256)
            return Probe(health: health, status: status, holdsArtifact: holds)
        }
        var byHost: [String: PlannedHost] = [:]
        for answer in answers {
            byHost[answer.host.id] = planHost(answer, envelope: envelope, manifest: manifest, policy: policy, now: now)
        }
        // Waves over the hosts that would be deployed, as the rollout would make them.
        let deployable = hosts.filter { byHost[$0.id]?.reachable == true }
        for wave in strategy.waves(hostCount: deployable.count) {
            for index in wave.hosts { byHost[deployable[index].id]?.wave = wave.name }
        }
        return hosts.compactMap { byHost[$0.id] }
    }

    /// The plan's header lines about a change freeze: none when the manifest's environment
    /// is not frozen at `now`; otherwise which freeze, until when and why, and whether this
    /// envelope is signed to break glass (a return to a release a host holds passes anyway;
    /// the per-host verdicts say which hosts would take it).
    public static func freezeNotice(envelope bytes: [UInt8], manifest: Manifest, policy: TrustPolicy?, now: Date = Date()) -> [String] {
        guard let policy, let envelope = try? Envelope.parse(bytes),
            let status = ManifestVerifier.freezeStatus(envelope: envelope, manifest: manifest, policy: policy, now: now)
        else { return [] }
        return [
            status.freeze.summary,
            status.breaksGlass
                ? "break glass: yes, this envelope carries \(status.requirement); it would be deployed and recorded as break-glass"
                : "break glass: no, that takes \(status.requirement); hosts refuse it (change_frozen) unless it is a return to a release they hold",
        ]
    }

    /// One host's plan from what it reported: the agent's own verifier, run here.
    static func planHost(
        _ answer: HostAnswer<Probe>, envelope: Envelope?, manifest: Manifest, policy: TrustPolicy?, now: Date
    ) -> PlannedHost {
        var planned = PlannedHost(host: answer.host.id, current: nil, target: manifest.release, reachable: false, action: "refused")
        let probe: Probe
        switch answer.result {
        case .failure(let error):
            planned.error = error.info
            planned.action = error.kind == .unreachable ? "unreachable" : "refused"
            return planned
        case .success(let answered):
            probe = answered
        }
        planned.reachable = true
        let status = probe.status
        planned.current = status?.current
        planned.upload = !probe.holdsArtifact
        let identical = status?.lastSerial == manifest.serial && status?.current == manifest.release
        let history = AppHistory(
            lastSerial: status?.lastSerial, lastPayloadDigest: identical ? envelope?.payloadDigest : nil,
            approvedReleases: Dictionary((status?.held ?? []).map { ($0.release, $0.approved) }, uniquingKeysWith: { $1 }))
        guard let policy, let envelope else {
            planned.action = "deploy"
            return planned
        }
        do throws(VerificationError) {
            _ = try ManifestVerifier.verify(
                envelope: envelope, policy: policy, host: HostIdentity(hostID: answer.host.id, environment: probe.health.environment),
                history: { _ in history }, now: now)
            planned.action = "deploy"
        } catch {
            if error.code == .duplicate {
                planned.action = "already"
                planned.upload = false
            } else {
                planned.error = ErrorInfo(code: error.code.rawValue, message: error.message)
            }
        }
        return planned
    }
}
