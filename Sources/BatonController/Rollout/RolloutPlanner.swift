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
        /// `deploy`, `already` (an identical resend: nothing would change), or `refused`.
        public var action: String
        public var error: ErrorInfo?
    }

    public static func plan(
        envelope bytes: [UInt8], manifest: Manifest, hosts: [Fleet.Host], strategy: RolloutStrategy, policy: TrustPolicy?,
        client: any AgentClient, now: Date = Date()
    ) async -> [PlannedHost] {
        let envelope = try? Envelope.parse(bytes)
        let results = await withTaskGroup(of: PlannedHost.self) { group in
            for host in hosts {
                group.addTask {
                    await planHost(host, envelope: envelope, manifest: manifest, policy: policy, client: client, now: now)
                }
            }
            var all: [String: PlannedHost] = [:]
            for await planned in group { all[planned.host] = planned }
            return all
        }
        // Waves over the hosts that would be deployed, as the rollout would make them.
        let deployable = hosts.filter { results[$0.id]?.reachable == true }
        var byHost = results
        for wave in strategy.waves(hostCount: deployable.count) {
            for index in wave.hosts { byHost[deployable[index].id]?.wave = wave.name }
        }
        return hosts.compactMap { byHost[$0.id] }
    }

    /// One host's plan. A named function, not a task-group closure: see
    /// `AgentClient.appStatusResult` for the miscompilation that typed `do/catch` in
    /// `addTask` closures triggers at -O.
    static func planHost(
        _ host: Fleet.Host, envelope: Envelope?, manifest: Manifest, policy: TrustPolicy?, client: any AgentClient, now: Date
    ) async -> PlannedHost {
        var planned = PlannedHost(host: host.id, current: nil, target: manifest.release, reachable: false, action: "refused")
        do throws(AgentCallError) {
            let health = try await client.health(host)
            planned.reachable = true
            let status = try await client.appStatus(host, app: manifest.app)
            planned.current = status?.current
            let installed = status?.releaseArtifacts?[manifest.release]?.sha256 == manifest.artifact.sha256
            planned.upload = installed ? false : !(try await client.hasArtifact(host, sha256: manifest.artifact.sha256))
            let identical = status?.lastSerial == manifest.serial && status?.current == manifest.release
            let history = AppHistory(
                lastSerial: status?.lastSerial, lastPayloadDigest: identical ? envelope?.payloadDigest : nil,
                approvedReleases: Dictionary(
                    (status?.held ?? []).map { ($0.release, $0.approved) }, uniquingKeysWith: { $1 }))
            guard let policy, let envelope else {
                planned.action = "deploy"
                return planned
            }
            do throws(VerificationError) {
                _ = try ManifestVerifier.verify(
                    envelope: envelope, policy: policy, host: HostIdentity(hostID: host.id, environment: health.environment),
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
        } catch {
            planned.error = error.info
            planned.action = error.kind == .unreachable ? "unreachable" : "refused"
        }
        return planned
    }
}
