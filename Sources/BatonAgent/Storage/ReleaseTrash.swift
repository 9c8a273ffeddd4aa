import Dispatch
import Synchronization
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Release trees the app no longer keeps leave `releases/` by one `rename(2)` into the
/// app's trash (`apps/<app>/.trash`), and their files are removed after the deployment
/// that dropped them has ended, off its path (docs/durability.md, "Removal after the
/// end"). Removing a tree of thousands of files takes as long as writing a small one; a
/// deployment's end should not wait for it.
///
/// What that changes for recovery: nothing a list shows. The state that forgets a release
/// is written before its tree moves (`applyRetention`), so a tree in the trash is never a
/// release the host claims; the next start empties the trash before it takes work
/// (`reconcile`), and a rename lost to a power cut leaves an unrecorded directory in
/// `releases/`, which that start removes as it always did.
///
/// One removal runs at a time, on a thread of its own at the lowest CPU priority (nice
/// 19): housekeeping yields to the service and to the agent's own work. A deployment's
/// unpack waits for a removal still running (`emptied()`), so the space a dropped
/// release held is free again before a new tree is written.
final class ReleaseTrash: Sendable {
    /// Runs a removal off the caller's thread.
    typealias Runner = @Sendable (@escaping @Sendable () -> Void) -> Void

    let layout: DataLayout
    private let runner: Runner
    private struct State {
        /// Trees were discarded since the last removal started.
        var discarded = false
        var running = false
        /// Trees removed from the trash since this agent started.
        var removed = 0
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Mutex(State())

    /// `runner`: where removals run (tests hold one back on a suspended queue).
    init(layout: DataLayout, runner: @escaping Runner = ReleaseTrash.onLowPriorityThread) {
        self.layout = layout
        self.runner = runner
    }

    /// Runs `work` on a new thread at nice 19 that ends with it; on Dispatch's global
    /// queue if no thread can be made. A thread of its own because on Linux the nice
    /// value belongs to the thread, and one lowered can only be raised again with
    /// privilege: a pool's thread would carry it into other work.
    static let onLowPriorityThread: Runner = { work in
        final class Body {
            let work: @Sendable () -> Void
            init(_ work: @escaping @Sendable () -> Void) { self.work = work }
        }
        // Removal needs little stack; the default is 8 MiB of address space.
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setstacksize(&attributes, 256 << 10)
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        var thread = pthread_t()
        let context = Unmanaged.passRetained(Body(work)).toOpaque()
        let status = pthread_create(&thread, &attributes, { context in
            let body = Unmanaged<Body>.fromOpaque(context!).takeRetainedValue()
            lowerThreadPriority()
            body.work()
            return nil
        }, context)
        if status != 0 {
            Unmanaged<Body>.fromOpaque(context).release()
            DispatchQueue.global(qos: .utility).async(execute: work)
        }
    }

    /// The calling thread's nice value to 19 (Linux: `PRIO_PROCESS` with 0 is the thread).
    static func lowerThreadPriority() {
        #if canImport(Glibc)
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 19)
        #else
        _ = setpriority(PRIO_PROCESS, 0, 19)
        #endif
    }

    /// Takes `directory` (a tree of `app`) out of its place now, to be removed later. When
    /// the rename cannot be made (the trash on another file system, say), the tree is
    /// removed here instead, as before there was a trash. Missing is fine.
    func discard(_ directory: String, app: String) {
        guard DurableFiles.exists(directory) else { return }
        let root = layout.trashRoot(app)
        let name = (directory.split(separator: "/").last.map(String.init) ?? "tree")
            + ".\(String(UInt64.random(in: 0 ... UInt64.max), radix: 16))"
        if (try? DurableFiles.makeDirectory(root)) != nil, rename(directory, "\(root)/\(name)") == 0 {
            state.withLock { $0.discarded = true }
            return
        }
        DurableFiles.removeTree(directory)
    }

    /// Starts removing what the trash holds in the background when trees were discarded
    /// since the last removal started. One running picks them up when it is done.
    func startEmptying() {
        let start = state.withLock { state -> Bool in
            guard state.discarded, !state.running else { return false }
            state.running = true
            return true
        }
        guard start else { return }
        runner { self.emptyInBackground() }
    }

    private func emptyInBackground() {
        while true {
            state.withLock { $0.discarded = false }
            emptyNow()
            let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>]? in
                if state.discarded { return nil }
                state.running = false
                defer { state.waiters = [] }
                return state.waiters
            }
            guard let waiters else { continue }
            for waiter in waiters { waiter.resume() }
            return
        }
    }

    /// Returns when no removal runs: at once if none does.
    func emptied() async {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> Bool in
                guard state.running else { return true }
                state.waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    /// Removes every app's trash, in the caller's thread.
    func emptyNow() {
        let apps = (try? FileManager.default.contentsOfDirectory(atPath: layout.appsDirectory)) ?? []
        for app in apps.sorted() {
            let root = layout.trashRoot(app)
            for entry in ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).sorted() {
                DurableFiles.removeTree("\(root)/\(entry)")
                state.withLock { $0.removed += 1 }
            }
        }
    }

    /// How many trees went through the trash since this agent started.
    var removed: Int { state.withLock { $0.removed } }

    /// What the trash of `app` holds (tests, the bench).
    func entries(_ app: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: layout.trashRoot(app))) ?? []).sorted()
    }
}
