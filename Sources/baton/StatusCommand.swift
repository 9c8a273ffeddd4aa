import ArgumentParser
import BatonCLISupport
import BatonController
import BatonProtocol
import Foundation

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "What every host runs: reachable, current release, serial, last result, drift, certificate expiry, agent version.",
        discussion: "Hosts are asked in parallel with a short timeout. Exit status 1 when a host is unreachable, drifted, cannot read an app's state (state_corrupt) or its certificate expires within 30 days, or when an app's last successful drill is older than its app file's drill.maxAge.")

    @Argument(help: "Only this app.") var app: String?
    @Option(help: ArgumentHelp("Only this environment.", valueName: "env")) var environment: String?
    @OptionGroup var selection: SelectionOptions
    @Flag(help: "JSON: one object per host and app.") var json = false
    @OptionGroup var controller: ControllerOptions

    func run() async throws {
        try checkNames((app, "app"), (environment, "environment"))
        let context = try ControllerContext(controller)
        let fleet = try context.fleet()
        let hosts = try selection.hosts(in: fleet, environment: environment)
        let history = try context.history()
        let lastGood = LastGoodReleases(history: history)
        var rows = try await context.withAgentClient(for: hosts, retry: .quick) { client in
            let rows = await FleetStatus.query(client: client, hosts: hosts, app: app) { app, environment in
                lastGood.release(app: app, environment: environment)
            }
            // Receipts the history lacks are collected on the way (`baton evidence`).
            if let receipts = history as? any ReceiptStore {
                await ReceiptSweep.collect(client: client, hosts: hosts, rows: rows, store: receipts)
            }
            return rows
        }
        // Apps whose way back was not practised within their app file's `drill.maxAge`.
        let environments = Dictionary(hosts.map { ($0.id, $0.environment) }, uniquingKeysWith: { first, _ in first })
        let pairs = rows.compactMap { row in row.app.flatMap { app in environments[row.host].map { (app: app, environment: $0) } } }
        let drillsDue = try reported { () throws(ControllerError) in
            guard let drills = history as? any DeliveryHistory else { return [DrillDue]() }
            return try DrillDue.check(pairs, definition: { try? context.app($0) }, history: drills)
        }
        for index in rows.indices {
            let (app, environment) = (rows[index].app, environments[rows[index].host])
            rows[index].drillDue = drillsDue.first { $0.app == app && $0.environment == environment }
        }
        if json {
            for row in rows { Output.json(row) }
        } else {
            Output.line("HOST         APP        CURRENT          SERIAL  LAST             DRIFT            CERT      AGENT")
            for row in rows {
                guard row.reachable else {
                    Output.line("\(pad(row.host, 12)) UNREACHABLE: \(row.error.map { "\($0.code): \($0.message)" } ?? "")")
                    continue
                }
                if let error = row.stateError {
                    Output.line("\(pad(row.host, 12)) \(pad(row.app ?? "-", 10)) \(pad(row.current ?? "-", 16)) STATE CORRUPT: \(error.code): \(error.message)")
                    continue
                }
                let drift = row.drift ? "drift (want \(row.desired ?? "?"))" : (row.desired == nil ? "-" : "ok")
                let cert = row.certificateDaysLeft.map { "\($0)d\(row.certificateWarning ? " RENEW" : "")" } ?? "?"
                Output.line([pad(row.host, 12), pad(row.app ?? "-", 10), pad(row.current ?? "-", 16), pad(row.serial.map(String.init) ?? "-", 7),
                             pad(row.lastPhase?.rawValue ?? "-", 16), pad(drift, 16), pad(cert, 9), row.agentVersion ?? "?"].joined(separator: " "))
            }
        }
        if !json {
            for due in drillsDue { Output.line("DRILL DUE: \(due.message())") }
        }
        if rows.contains(where: { !$0.reachable || $0.drift || $0.certificateWarning || $0.stateError != nil }) || !drillsDue.isEmpty {
            throw ExitCode(1)
        }
    }
}
