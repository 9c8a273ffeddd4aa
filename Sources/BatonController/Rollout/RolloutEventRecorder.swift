import Synchronization

/// Writes a rollout's progress events to the history from a task of its own, in order, as
/// many at a time as have arrived meanwhile (one transaction each), so that the rollout
/// never waits for the store. Before, the runner wrote each event itself, in its own
/// transaction: with a PostgreSQL store every event was a round trip and a commit, and
/// with SQLite on a disk a sync, all on the rollout's own path.
///
/// Each batch is handed to `written` once its transaction has ended, so what the operator
/// is shown has been recorded first, as when the runner wrote each event itself; an
/// operator or a test that acts on a shown event (stops the controller, say) never finds
/// it missing from the history, and never catches the controller in the middle of that
/// event's transaction, holding row locks another controller would wait for.
///
/// ``finish()`` waits until every event added before it is written and shown; the session
/// calls it before it writes the rollout's end record, which thus follows every event
/// (and, synced, takes them to disk). A store that fails an event write loses that batch
/// from the record, as a failed single write did before; the events are still shown and
/// the rollout goes on.
final class RolloutEventRecorder: Sendable {
    /// Added and not yet taken by the writer.
    private final class Pending: Sendable {
        let events = Mutex<[RolloutEvent]>([])
    }
    private let pending = Pending()
    private let wake: AsyncStream<Void>.Continuation
    private let writer: Task<Void, Never>

    init(history: any HistoryStore, written: @escaping @Sendable ([RolloutEvent]) -> Void) {
        let (wakes, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        self.wake = wake
        let pending = self.pending
        writer = Task {
            func drain() {
                let batch = pending.events.withLock { events in
                    defer { events = [] }
                    return events
                }
                guard !batch.isEmpty else { return }
                try? history.record(batch)
                written(batch)
            }
            for await _ in wakes { drain() }
            drain()
        }
    }

    func add(_ event: RolloutEvent) {
        pending.events.withLock { $0.append(event) }
        wake.yield()
    }

    /// Waits until everything added so far is written; nothing may be added after.
    func finish() async {
        wake.finish()
        await writer.value
    }
}
