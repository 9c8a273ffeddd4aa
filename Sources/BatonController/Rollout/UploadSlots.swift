/// A bound on the artifact uploads one rollout runs at once. Hosts still deploy with the
/// strategy's full parallelism; only the transfers queue. Every upload shares the
/// controller's uplink (and, for local agents, its CPU), so fifty uploads at once all
/// finish late, while a few at a time let the first hosts unpack and health-check while
/// the others are still receiving: the same bytes, sent in a pipeline.
actor UploadSlots {
    nonisolated let count: Int
    private var available: Int
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(_ count: Int) {
        self.count = max(1, count)
        available = self.count
    }

    /// Takes a free slot if there is one, without waiting.
    func tryAcquire() -> Bool {
        guard available > 0 else { return false }
        available -= 1
        return true
    }

    /// Waits for a free slot. Not cancellable on purpose: every holder releases (its
    /// upload ends one way or another), and a cancelled task given a slot fails its
    /// upload at once and releases it.
    func acquire() async {
        if available > 0 {
            available -= 1
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    func release() {
        if waiting.isEmpty {
            available += 1
        } else {
            waiting.removeFirst().resume()
        }
    }
}
