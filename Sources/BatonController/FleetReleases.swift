import BatonProtocol

/// `baton releases APP`: what each host holds of an app, as its agent reports it: the
/// live release, the one live before it (the way back) and every release it could
/// return to under the rollback threshold.
public enum FleetReleases {
    public struct Row: Codable, Sendable, Equatable {
        public var host: String
        public var current: String?
        public var previous: String?
        /// Held releases, newest live first, each with the serial it was approved at.
        public var held: [HeldRelease]
        public var liveHistory: [LiveRelease]
        public var error: ErrorInfo?

        public struct HeldRelease: Codable, Sendable, Equatable {
            public var release: String
            public var approvedAtSerial: UInt64
            public var approvedBy: [String]
        }

        /// Held releases other than the current and the previous one.
        public var others: [String] { held.map(\.release).filter { $0 != current && $0 != previous } }
    }

    public static func query(client: any AgentClient, hosts: [Fleet.Host], app: String, fanOut: FanOut = .quick) async -> [Row] {
        await fanOut.ask(hosts) { host throws(AgentCallError) in try await client.appStatus(host, app: app) }.map { answer in
            switch answer.result {
            case .failure(let error):
                return Row(host: answer.host.id, held: [], liveHistory: [], error: error.info)
            case .success(let status):
                return Row(
                    host: answer.host.id, current: status?.current, previous: status?.previous,
                    held: (status?.held ?? []).map {
                        Row.HeldRelease(
                            release: $0.release, approvedAtSerial: $0.approved.serial, approvedBy: $0.approvedBy.map { $0.names.first ?? $0.keyid })
                    },
                    liveHistory: status?.liveHistory ?? [])
            }
        }
    }
}
