import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The deployments that rely on a cached copy between their fetch step and the unpack
/// that reads it, so that one deployment's unpack removes the copy only when no other
/// deployment in flight still needs it (`ArtifactCache.consume`).
///
/// A claim and the removal are decided under one lock: a deployment that claims a copy
/// either finds it there and keeps it from removal until it has read it, or finds it gone
/// and says so (`artifact_unavailable`). In memory only: every deployment in flight at a
/// restart is settled before its unpack (reconciliation records it failed).
final class CopyClaims: Sendable {
    private let claims = Mutex<[String: Set<String>]>([:])

    /// Claims `digest` for deployment `id` if `exists` (run under the lock) says the copy is there.
    func claim(_ digest: String, by id: String, exists: () -> Bool) -> Bool {
        claims.withLock {
            guard exists() else { return false }
            $0[digest, default: []].insert(id)
            return true
        }
    }

    /// Drops `id`'s claim; then, when no other deployment holds one, runs `remove` under the lock.
    func release(_ digest: String, by id: String, remove: (() -> Void)? = nil) {
        claims.withLock {
            $0[digest]?.remove(id)
            if $0[digest]?.isEmpty == true { $0[digest] = nil }
            if $0[digest] == nil { remove?() }
        }
    }

    /// The digests some deployment holds a claim on.
    var claimed: Set<String> { claims.withLock { Set($0.keys) } }
}
