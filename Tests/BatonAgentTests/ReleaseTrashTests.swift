@testable import BatonAgent
import BatonTestSupport
import Dispatch
import Foundation
import Synchronization
import Testing

/// Release trees the app no longer keeps leave `releases/` by one rename and are removed
/// after the deployment's end: never while it runs, always before the next one unpacks,
/// and at the next start if the agent stopped first.
@Suite struct ReleaseTrashTests {
    /// A release tree of `files` files, with a read-only directory in it (a release may
    /// hold one; removal must still get through).
    func makeTree(_ layout: DataLayout, _ release: String, files: Int = 20) throws -> String {
        let directory = layout.releaseDirectory("web", release)
        try FileManager.default.createDirectory(atPath: "\(directory)/locked", withIntermediateDirectories: true)
        for index in 0..<files {
            try "\(index)\n".write(toFile: "\(directory)/file-\(index)", atomically: false, encoding: .utf8)
        }
        try "x".write(toFile: "\(directory)/locked/inside", atomically: false, encoding: .utf8)
        chmod("\(directory)/locked", 0o500)
        return directory
    }

    /// A trash in a temporary data directory whose removals run on a queue the test holds.
    func heldTrash() throws -> (TemporaryDirectory, DataLayout, DispatchQueue, ReleaseTrash) {
        let dir = try TemporaryDirectory(prefix: "baton-trash")
        let layout = DataLayout(root: dir.child("data"))
        let queue = DispatchQueue(label: "test.trash")
        return (dir, layout, queue, ReleaseTrash(layout: layout, runner: { queue.async(execute: $0) }))
    }

    @Test func aDiscardedTreeLeavesAtOnceAndIsRemovedWhenTheQueueRuns() async throws {
        let (dir, layout, queue, trash) = try heldTrash()
        defer { dir.remove() }
        let tree = try makeTree(layout, "v1")

        queue.suspend()
        trash.discard(tree, app: "web")
        #expect(!FileManager.default.fileExists(atPath: tree))
        let held = trash.entries("web")
        #expect(held.count == 1 && held[0].hasPrefix("v1."), "\(held)")
        #expect(FileManager.default.fileExists(atPath: "\(layout.trashRoot("web"))/\(held[0])/file-19"))

        trash.startEmptying()
        let done = Atomic<Bool>(false)
        let waiter = Task {
            await trash.emptied()
            done.store(true, ordering: .sequentiallyConsistent)
        }
        // Held back: nothing is removed, and whoever waits for the removal still waits.
        try await Task.sleep(for: .milliseconds(100))
        let doneWhileHeld = done.load(ordering: .sequentiallyConsistent)
        #expect(!doneWhileHeld)
        #expect(trash.entries("web").count == 1)

        queue.resume()
        await waiter.value
        let doneAfter = done.load(ordering: .sequentiallyConsistent)
        #expect(doneAfter)
        #expect(trash.entries("web").isEmpty)
    }

    @Test func treesDiscardedBeforeTheRemovalStartsGoInTheSameRemoval() async throws {
        let (dir, layout, queue, trash) = try heldTrash()
        defer { dir.remove() }
        queue.suspend()
        trash.discard(try makeTree(layout, "v1"), app: "web")
        trash.startEmptying()
        trash.discard(try makeTree(layout, "v2"), app: "web")
        trash.startEmptying()
        #expect(trash.entries("web").count == 2)
        queue.resume()
        await trash.emptied()
        #expect(trash.entries("web").isEmpty)
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: layout.releasesDirectory("web"))) ?? []).isEmpty)
    }

    @Test func nothingDiscardedStartsNoRemoval() async throws {
        let (dir, layout, queue, trash) = try heldTrash()
        defer { dir.remove() }
        queue.suspend()
        defer { queue.resume() }
        trash.startEmptying()
        // With no removal started, nobody waits for one, even with the queue held.
        await trash.emptied()
    }

    @Test func whenTheTreeCannotMoveItIsRemovedInPlace() async throws {
        let dir = try TemporaryDirectory(prefix: "baton-trash")
        defer { dir.remove() }
        let layout = DataLayout(root: dir.child("data"))
        let trash = ReleaseTrash(layout: layout)
        let tree = try makeTree(layout, "v1")
        // A file where the trash directory would be: the rename cannot happen.
        try "not a directory".write(toFile: layout.trashRoot("web"), atomically: false, encoding: .utf8)
        trash.discard(tree, app: "web")
        #expect(!FileManager.default.fileExists(atPath: tree))
        #expect(try String(contentsOfFile: layout.trashRoot("web"), encoding: .utf8) == "not a directory")
    }

    @Test func removalsRunOnAThreadOfTheirOwnAtTheLowestPriority() async throws {
        let seen = Mutex<Int32?>(nil)
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            ReleaseTrash.onLowPriorityThread {
                errno = 0
                let nice = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
                seen.withLock { $0 = nice }
                done.resume()
            }
        }
        let nice = try #require(seen.withLock { $0 })
        #expect(nice == 19)
        // The caller's own priority is untouched.
        #expect(getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0) == 0)
    }

    @Test func retentionSendsTheDroppedReleaseToTheTrashAndItIsGoneAfterTheEnd() async throws {
        let fixture = try AgentFixture()
        defer { fixture.remove() }
        let engine = try fixture.engine()
        let releases = ["v1", "v2", "v3", "v4"]
        for (index, release) in releases.enumerated() {
            let artifact = try fixture.artifact(release)
            let record = try await engine.deploy(try fixture.envelope(release, artifact: artifact, keep: 3), artifact: artifact.path)
            #expect(record.phase == .succeeded, "\(record.events.map(\.message))")
            // Out of `releases/` by the deployment's end, whether or not its files are gone yet.
            #expect(fixture.releasesOnDisk() == Array(releases[...index].suffix(3)))
            #expect(fixture.stagingEntries().isEmpty)
        }
        await engine.trashEmptied()
        #expect(engine.trash.entries("web").isEmpty)
        // v1 went through the trash, not removed in place.
        #expect(engine.trash.removed == 1)
        #expect(await engine.appStatus("web")?.releases.sorted() == ["v2", "v3", "v4"])
    }

    @Test func theNextStartEmptiesWhatAStopLeftInTheTrash() async throws {
        let fixture = try AgentFixture()
        defer { fixture.remove() }
        do {
            let engine = try fixture.engine()
            let v1 = try fixture.artifact("v1")
            #expect(try await engine.deploy(try fixture.envelope("v1", artifact: v1), artifact: v1.path).phase == .succeeded)
        }
        // As a stop between the rename and the removal leaves it.
        let left = "\(fixture.layout.trashRoot("web"))/v0.1234abcd"
        try FileManager.default.createDirectory(atPath: "\(left)/deep/er", withIntermediateDirectories: true)
        try "x".write(toFile: "\(left)/deep/er/file", atomically: false, encoding: .utf8)
        chmod("\(left)/deep", 0o500)
        let engine = try fixture.engine()
        await engine.reconcile()
        #expect(!FileManager.default.fileExists(atPath: left))
        #expect(fixture.current() == "v1")
        #expect(fixture.releasesOnDisk() == ["v1"])
    }
}
