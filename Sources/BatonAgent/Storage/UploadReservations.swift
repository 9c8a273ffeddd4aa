import Synchronization

/// The artifact uploads being received now, each with the bytes it will add to the cache.
/// A lock, not the engine's actor: an upload ends on whatever task reads its body, and
/// its slot must be free the moment it ends (a hop through a `Task` left a window in
/// which the next upload was refused as busy).
final class UploadReservations: Sendable {
    struct Reservation: Sendable {
        let digest: String
        let size: UInt64
        /// A fetch from `artifact.url`: its bytes count against the cache like an upload's,
        /// but not against the upload limit (fetches have their own, `fetch.maxConcurrent`).
        var isFetch = false
    }

    private let state = Mutex<(next: Int, open: [Int: Reservation])>((0, [:]))

    /// Takes a slot for an upload of `size` bytes, or nil when `limit` uploads are in
    /// progress already.
    func reserve(digest: String, size: UInt64, limit: Int) -> Int? {
        state.withLock { state in
            guard state.open.values.count(where: { !$0.isFetch }) < limit else { return nil }
            state.next += 1
            state.open[state.next] = Reservation(digest: digest, size: size)
            return state.next
        }
    }

    /// Records a fetch of `size` bytes; never refused (fetches wait for a slot before).
    func reserveFetch(digest: String, size: UInt64) -> Int {
        state.withLock { state in
            state.next += 1
            state.open[state.next] = Reservation(digest: digest, size: size, isFetch: true)
            return state.next
        }
    }

    func release(_ token: Int) {
        _ = state.withLock { $0.open.removeValue(forKey: token) }
    }

    /// Uploads in progress (fetches not counted).
    var count: Int { state.withLock { $0.open.values.count(where: { !$0.isFetch }) } }

    /// What the uploads in progress other than `token` will add, and their digests.
    func others(than token: Int) -> (bytes: UInt64, digests: Set<String>) {
        state.withLock { state in
            let others = state.open.filter { $0.key != token }.values
            return (others.reduce(0) { $0 + $1.size }, Set(others.map(\.digest)))
        }
    }
}
