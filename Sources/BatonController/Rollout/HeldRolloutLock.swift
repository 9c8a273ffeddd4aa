import BatonProtocol
import Foundation

/// The app's rollout lock for one environment, as held by this process: taken (waiting
/// for a live holder, taking over a dead one), renewed, released. Renewing and releasing
/// name the term the store handed out, so they never touch a lock that moved on.
struct HeldRolloutLock: Sendable {
    let history: any HistoryStore
    let request: LockRequest
    let term: Int

    /// Extends the lease; false once the lock was broken or taken over. Renewing is the
    /// check: it succeeds only while the row still carries our term.
    func renew() -> Bool {
        (try? history.renewLock(
            app: request.app, environment: request.environment, rolloutID: request.rolloutID, term: term,
            lease: request.lease, now: Date())) ?? false
    }

    func release() {
        try? history.releaseLock(app: request.app, environment: request.environment, rolloutID: request.rolloutID, term: term, now: Date())
    }

    /// Takes the lock, waiting up to `wait` seconds for a live one to be released.
    /// `notify` hears of every takeover; `lock_held` when the wait ends with another holder.
    static func acquire(
        _ request: LockRequest, history: any HistoryStore, wait: TimeInterval, notify: @Sendable (String) -> Void
    ) async throws(ControllerError) -> HeldRolloutLock {
        let deadline = Date().addingTimeInterval(wait)
        while true {
            switch try history.acquireLock(request, now: Date()) {
            case .acquired(let term):
                return HeldRolloutLock(history: history, request: request, term: term)
            case .tookOver(let previous, let term):
                // The previous holder's controller died before recording its end; without
                // this its rollout would show as running forever.
                if previous.rolloutID != request.rolloutID {
                    _ = try? history.rolloutAbandoned(
                        id: previous.rolloutID, reason: "its lease ran out and rollout \(request.rolloutID) took the lock over", now: Date())
                }
                notify("warning: took over the lock of \(request.app) in \(request.environment) from rollout \(previous.rolloutID) (\(previous.owner), pid \(previous.pid)), whose lease ran out at \(RFC3339.format(previous.expiresAt)); the takeover is recorded")
                return HeldRolloutLock(history: history, request: request, term: term)
            case .held(let holder):
                if holder.rolloutID == request.rolloutID, holder.owner == request.owner, !processIsAlive(holder.pid) {
                    // `resume` or `abort` of a rollout whose controller on this machine was
                    // killed: its lease would keep the rollout locked for nothing. The term
                    // check in the store makes this a no-op if the lock moved meanwhile.
                    let takeover = try history.takeOverLock(
                        request, from: holder, reason: "its controller (pid \(holder.pid) on this machine) is gone", now: Date())
                    switch takeover {
                    case .tookOver(_, let term):
                        notify("warning: took over the lock of rollout \(holder.rolloutID), whose controller (pid \(holder.pid)) is gone; the takeover is recorded")
                        return HeldRolloutLock(history: history, request: request, term: term)
                    case .acquired(let term):
                        return HeldRolloutLock(history: history, request: request, term: term)
                    case .held:
                        continue
                    }
                }
                if holder.rolloutID == request.rolloutID {
                    throw ControllerError(
                        .lockHeld,
                        "rollout \(holder.rolloutID) is still run by its controller: \(holder.owner) (pid \(holder.pid), term \(holder.term)) holds the lock of \(request.app) in \(request.environment), lease until \(RFC3339.format(holder.expiresAt)) unless renewed; stop that controller (Ctrl-C halts it), or `baton lock break \(request.app) \(request.environment) --reason ...` if it is dead")
                }
                if Date() >= deadline {
                    throw ControllerError(
                        .lockHeld,
                        "rollout \(holder.rolloutID) by \(holder.owner) (pid \(holder.pid)) holds the lock of \(request.app) in \(request.environment) until \(RFC3339.format(holder.expiresAt)) unless renewed; wait with --lock-wait, or `baton lock break \(request.app) \(request.environment) --reason ...` if it is dead")
                }
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
    }

    /// Whether `pid` is a process on this machine; a process of another user counts as alive.
    static func processIsAlive(_ pid: Int32) -> Bool {
        kill(pid, 0) == 0 || errno == EPERM
    }
}
