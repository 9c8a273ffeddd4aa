import BatonProtocol
import Foundation

/// `baton check --reach`: can every host be reached over mutual TLS, is its agent
/// healthy, and how long its certificate has left.
public enum FleetReach {
    public struct HostReach: Sendable, Equatable {
        public var host: String
        public var agentVersion: String?
        public var certificateDaysLeft: Int?
        /// What needs an operator: a degraded agent, a certificate close to expiry.
        public var problems: [String]
        public var error: ErrorInfo?

        public var ok: Bool { error == nil && problems.isEmpty }
    }

    public static func check(client: any AgentClient, hosts: [Fleet.Host], fanOut: FanOut = .quick, now: Date = Date()) async -> [HostReach] {
        let answers = await fanOut.ask(hosts) { host throws(AgentCallError) in
            (try await client.health(host), client.certificate(of: host))
        }
        return answers.map { answer in
            guard case .success(let (health, certificate)) = answer.result else {
                return HostReach(host: answer.host.id, problems: [], error: answer.error?.info)
            }
            let days = certificate?.daysUntilExpiry(now: now)
            var problems: [String] = []
            if health.status != "ok" { problems.append("\(health.status): \(health.audit?.problem ?? "see /v1/health")") }
            if let days, days < FleetStatus.certificateWarningDays { problems.append("certificate expires in \(days) day(s)") }
            return HostReach(host: answer.host.id, agentVersion: health.version, certificateDaysLeft: days, problems: problems)
        }
    }
}
