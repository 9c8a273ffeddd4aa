import BatonProtocol
import Foundation

/// An app whose way back has not been practised recently enough in an environment: its
/// app file asks for a successful drill every `maxAge`, and the last one is older, or
/// there was none.
public struct DrillDue: Codable, Sendable, Equatable {
    public var app: String
    public var environment: String
    public var maxAge: BatonDuration
    /// When the last successful drill ended; nil: never.
    public var lastSucceeded: Date?

    /// `web in staging: last successful drill 45d 2h ago (maxAge 30d); run ...`.
    public func message(now: Date = Date()) -> String {
        let days = maxAge.milliseconds / 86_400_000
        let age = maxAge.milliseconds % 86_400_000 == 0 ? "\(days)d" : maxAge.description
        let last = lastSucceeded.map { "last successful drill \(DeliveryReport.duration(now.timeIntervalSince($0))) ago" } ?? "never drilled"
        return "\(app) in \(environment): \(last) (drill maxAge \(age)); run `baton drill \(app) --environment \(environment)`"
    }

    /// The overdue drills among `pairs` (app, environment), by each app's `drill.maxAge`;
    /// apps without an app file or without `drill:` are never due.
    public static func check(
        _ pairs: [(app: String, environment: String)], definition: (String) -> AppDefinition?, history: any DeliveryHistory, now: Date = Date()
    ) throws(ControllerError) -> [DrillDue] {
        var due: [DrillDue] = []
        var seen = Set<String>()
        for (app, environment) in pairs where seen.insert("\(app)\n\(environment)").inserted {
            guard let maxAge = definition(app)?.drillMaxAge else { continue }
            let last = try history.lastSuccessfulDrill(app: app, environment: environment)
            let ended = last.map { $0.finishedAt ?? $0.startedAt }
            if let ended, now.timeIntervalSince(ended) <= maxAge.seconds { continue }
            due.append(DrillDue(app: app, environment: environment, maxAge: maxAge, lastSucceeded: ended))
        }
        return due
    }
}
