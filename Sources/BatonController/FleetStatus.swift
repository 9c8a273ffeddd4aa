import BatonPKI
import BatonProtocol
import Foundation

/// What `baton status` shows for one host and app.
public struct HostStatus: Codable, Sendable, Equatable {
    public var host: String
    public var address: String
    public var reachable: Bool
    public var error: ErrorInfo?
    public var agentVersion: String?
    public var app: String?
    public var current: String?
    public var serial: UInt64?
    public var lastPhase: DeploymentPhase?
    public var lastError: ErrorInfo?
    /// The app's last deployment on the host (whose receipt `baton status` collects).
    public var lastDeploymentID: String?
    /// The agent cannot read this app's state or the record of its last or running
    /// deployment (`state_corrupt`): it refuses deployments of the app until a person
    /// rebuilds it on the host.
    public var stateError: ErrorInfo?
    /// The release of the app's last successful rollout to the environment, per the history.
    public var desired: String?
    /// True when the host runs something other than `desired`.
    public var drift: Bool
    public var certificateExpiresAt: Date?
    public var certificateDaysLeft: Int?
    /// Under 30 days: renew (`batond csr` and `baton pki sign-csr`).
    public var certificateWarning: Bool
    /// The app's drill in this host's environment is overdue (`drill: {maxAge}` in its app file).
    public var drillDue: DrillDue?
}

/// Asks every host, in parallel and quickly, what it runs.
public enum FleetStatus {
    public static let certificateWarningDays = 30

    /// What one host said: its health, its certificate as presented, and the app(s).
    struct Answer: Sendable {
        var health: AgentHealth
        var certificate: PeerCertificate?
        var apps: [AppStatus]
    }

    public static func query(
        client: any AgentClient, hosts: [Fleet.Host], app: String?, desired: @escaping @Sendable (String, String) -> String?,
        fanOut: FanOut = .quick, now: Date = Date()
    ) async -> [HostStatus] {
        let answers = await fanOut.ask(hosts) { host throws(AgentCallError) in
            let health = try await client.health(host)
            let apps: [AppStatus]
            if let app {
                apps = try await client.appStatus(host, app: app).map { [$0] } ?? [AppStatus(app: app)]
            } else {
                apps = try await client.apps(host)
            }
            return Answer(health: health, certificate: client.certificate(of: host), apps: apps)
        }
        var rows: [HostStatus] = []
        for answer in answers {
            rows += self.rows(answer, app: app, desired: desired, now: now)
        }
        return rows
    }

    /// One host's rows, apps sorted by name; an unreachable host is one row with its error.
    static func rows(_ answer: HostAnswer<Answer>, app: String?, desired: (String, String) -> String?, now: Date) -> [HostStatus] {
        let host = answer.host
        var base = HostStatus(host: host.id, address: host.address, reachable: false, drift: false, certificateWarning: false)
        let value: Answer
        switch answer.result {
        case .failure(let error):
            base.error = error.info
            base.app = app
            return [base]
        case .success(let answered):
            value = answered
        }
        base.reachable = true
        base.agentVersion = value.health.version
        if let certificate = value.certificate {
            base.certificateExpiresAt = certificate.notValidAfter
            base.certificateDaysLeft = certificate.daysUntilExpiry(now: now)
            base.certificateWarning = certificate.daysUntilExpiry(now: now) < certificateWarningDays
        }
        if value.apps.isEmpty { return [base] }
        return value.apps.sorted { $0.app < $1.app }.map { status in
            var row = base
            row.app = status.app
            row.current = status.current
            row.serial = status.lastSerial
            row.lastPhase = status.lastPhase
            row.lastError = status.lastError
            row.lastDeploymentID = status.lastDeploymentID
            row.stateError = status.stateError
            row.desired = desired(status.app, host.environment)
            row.drift = row.desired != nil && row.desired != status.current
            return row
        }
    }
}
