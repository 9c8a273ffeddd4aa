/// The bound on fetches one agent runs at once (`fetch.maxConcurrent`). A deployment
/// whose artifact must be fetched waits here for a slot, first come first served: the
/// host's link and disk serve a few transfers well and many badly.
actor FetchSlots {
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

    /// Waits for a free slot. Not cancellable: every holder releases when its fetch ends,
    /// and a fetch ends by its deadline at the latest (a cancelled one at once).
    func acquire() async {
        if tryAcquire() { return }
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
