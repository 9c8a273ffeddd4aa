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
}

/// Asks every host, in parallel and quickly, what it runs.
public enum FleetStatus {
    public static let certificateWarningDays = 30

    public static func query(
        client: any AgentClient, hosts: [Fleet.Host], app: String?, desired: @escaping @Sendable (String, String) -> String?,
        now: Date = Date()
    ) async -> [HostStatus] {
        let rows = await withTaskGroup(of: [HostStatus].self) { group in
            for host in hosts {
                group.addTask { await queryHost(host, client: client, app: app, desired: desired, now: now) }
            }
            var all: [HostStatus] = []
            for await rows in group { all += rows }
            return all
        }
        let order = Dictionary(uniqueKeysWithValues: hosts.enumerated().map { ($1.id, $0) })
        return rows.sorted { a, b in
            let left = order[a.host] ?? 0, right = order[b.host] ?? 0
            return left != right ? left < right : (a.app ?? "") < (b.app ?? "")
        }
    }

    /// One host's rows. A named function, not a task-group closure (see
    /// `AgentClient.appStatusResult`).
    static func queryHost(
        _ host: Fleet.Host, client: any AgentClient, app: String?, desired: @escaping @Sendable (String, String) -> String?, now: Date
    ) async -> [HostStatus] {
        var base = HostStatus(
            host: host.id, address: host.address, reachable: false, drift: false, certificateWarning: false)
        do throws(AgentCallError) {
            let health = try await client.health(host)
            base.reachable = true
            base.agentVersion = health.version
            if let certificate = client.certificate(of: host) {
                base.certificateExpiresAt = certificate.notValidAfter
                base.certificateDaysLeft = certificate.daysUntilExpiry(now: now)
                base.certificateWarning = certificate.daysUntilExpiry(now: now) < certificateWarningDays
            }
            let apps: [AppStatus]
            if let app {
                apps = try await client.appStatus(host, app: app).map { [$0] } ?? [AppStatus(app: app)]
            } else {
                apps = try await client.apps(host)
            }
            if apps.isEmpty { return [base] }
            return apps.map { status in
                var row = base
                row.app = status.app
                row.current = status.current
                row.serial = status.lastSerial
                row.lastPhase = status.lastPhase
                row.lastError = status.lastError
                row.stateError = status.stateError
                row.desired = desired(status.app, host.environment)
                row.drift = row.desired != nil && row.desired != status.current
                return row
            }
        } catch {
            base.error = error.info
            base.app = app
            return [base]
        }
    }
}
