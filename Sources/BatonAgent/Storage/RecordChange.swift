import BatonProtocol
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One change to a deployment record: what the engine does to its record in memory, and
/// what a line of the record's event log says. Applying the same changes in the same
/// order gives the same record, so a record read back from its summary and its log is
/// the record the engine held.
struct RecordChange: Codable, Sendable, Equatable {
    /// When the change was made: the record's `updatedAt` afterwards, and the end of the
    /// phase a transition leaves.
    var time: Date
    /// A transition to this phase (the same phase again only adds the event).
    var phase: DeploymentPhase?
    var event: DeploymentEvent?
    var error: ErrorInfo?
    var hook: HookRun?
    var attempts: [HealthAttempt]?
    var reconciliation: String?

    init(
        time: Date, phase: DeploymentPhase? = nil, event: DeploymentEvent? = nil, error: ErrorInfo? = nil,
        hook: HookRun? = nil, attempts: [HealthAttempt]? = nil, reconciliation: String? = nil
    ) {
        self.time = time
        self.phase = phase
        self.event = event
        self.error = error
        self.hook = hook
        self.attempts = attempts
        self.reconciliation = reconciliation
    }

    /// Health attempts a record keeps during a long bake: the first ones and the latest.
    static let keptAttempts = (first: 100, latest: 500)

    func apply(to record: inout DeploymentRecord) {
        if let phase {
            if record.phase != phase {
                if let last = record.timings.indices.last, record.timings[last].endedAt == nil {
                    record.timings[last].endedAt = time
                }
                if !phase.isTerminal { record.timings.append(PhaseTiming(phase: phase, startedAt: time)) }
                record.phase = phase
            }
            if phase.isTerminal { record.finishedAt = time }
        }
        if let error { record.error = error }
        if let event { record.events.append(event) }
        if let hook { record.hooks.append(hook) }
        if let attempts {
            record.healthAttempts.append(contentsOf: attempts)
            let limit = Self.keptAttempts.first + Self.keptAttempts.latest
            if record.healthAttempts.count > limit {
                record.healthAttempts.removeSubrange(Self.keptAttempts.first..<(record.healthAttempts.count - Self.keptAttempts.latest))
            }
        }
        if let reconciliation {
            // Marking a record settled at start is not a change of the deployment itself.
            record.reconciliation = reconciliation
            if phase == nil, event == nil, hook == nil, attempts == nil, error == nil { return }
        }
        record.updatedAt = time
    }
}

/// A record's summary file: the record as it was when the summary was written, and how
/// many lines of its event log that already includes. The count is one more key in the
/// record's JSON object, so the file still reads as a `DeploymentRecord`.
struct RecordSummary: Codable, Sendable {
    var record: DeploymentRecord
    var eventLogLines: Int

    private enum Keys: String, CodingKey { case eventLogLines }

    init(record: DeploymentRecord, eventLogLines: Int) {
        self.record = record
        self.eventLogLines = eventLogLines
    }

    init(from decoder: any Decoder) throws {
        record = try DeploymentRecord(from: decoder)
        // Records written before the event log have no count and no log.
        eventLogLines = try decoder.container(keyedBy: Keys.self).decodeIfPresent(Int.self, forKey: .eventLogLines) ?? 0
    }

    func encode(to encoder: any Encoder) throws {
        try record.encode(to: encoder)
        var container = encoder.container(keyedBy: Keys.self)
        try container.encode(eventLogLines, forKey: .eventLogLines)
    }
}
