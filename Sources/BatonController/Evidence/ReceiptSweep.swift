import BatonProtocol
import Foundation

/// `baton status` collects receipts too: for every host whose app's last deployment has
/// ended and whose receipt the history lacks (a rollout lost the agent at the end, or a
/// deployment came from `batond apply` or another controller), it asks the agent for the
/// deployment's record, which carries the receipt, and keeps it.
public enum ReceiptSweep {
    /// Returns how many receipts were new to the store. Hosts that cannot answer are
    /// skipped: status reports them already.
    @discardableResult
    public static func collect(
        client: any AgentClient, hosts: [Fleet.Host], rows: [HostStatus], store: any ReceiptStore,
        fanOut: FanOut = .quick, now: Date = Date()
    ) async -> Int {
        var wanted: [(host: Fleet.Host, deploymentID: String)] = []
        let byID = Dictionary(hosts.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        for row in rows where row.reachable && row.lastPhase?.isTerminal == true {
            guard let id = row.lastDeploymentID, let host = byID[row.host] else { continue }
            guard (try? store.receipt(host: row.host, deploymentID: id)) == nil else { continue }
            wanted.append((host, id))
        }
        return await collect(client: client, wanted: wanted, store: store, fanOut: fanOut, now: now)
    }

    /// Asks each host for the records of its `wanted` deployments and keeps the receipts
    /// they carry (`baton evidence` fills a rollout's gaps this way). Returns how many
    /// were kept; hosts that cannot answer are skipped.
    @discardableResult
    public static func collect(
        client: any AgentClient, wanted: [(host: Fleet.Host, deploymentID: String)], store: any ReceiptStore,
        fanOut: FanOut = .quick, now: Date = Date()
    ) async -> Int {
        guard !wanted.isEmpty else { return 0 }
        // One question per host: a host lists each app at most once in the rows.
        let ids = Dictionary(grouping: wanted, by: { $0.host.id }).mapValues { $0.map(\.deploymentID) }
        let answers = await fanOut.ask(wanted.map(\.host).uniqued()) { host throws(AgentCallError) in
            var records: [DeploymentRecord] = []
            for id in ids[host.id] ?? [] { records.append(try await client.record(host, deploymentID: id)) }
            return records
        }
        var kept = 0
        for answer in answers {
            for record in answer.value ?? [] where record.receipt != nil {
                ReceiptCollector.keep(record, host: answer.host.id, in: store, now: now)
                kept += 1
            }
        }
        return kept
    }
}

extension Array where Element == Fleet.Host {
    /// Each host once, in first-seen order.
    fileprivate func uniqued() -> [Fleet.Host] {
        var seen = Set<String>()
        return filter { seen.insert($0.id).inserted }
    }
}
