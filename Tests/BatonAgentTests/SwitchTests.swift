@testable import BatonAgent
import BatonTestSupport
import Foundation
import Testing

@Suite struct SwitchTests {
    /// A reader resolving `current/VERSION` while 1,000 switches happen never finds it missing:
    /// the new symlink is renamed over the old one, never removed first.
    @Test func readersNeverSeeCurrentMissingDuringSwitches() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        for release in ["a", "b"] {
            try FileManager.default.createDirectory(atPath: dir.child("releases/\(release)"), withIntermediateDirectories: true)
            try "\(release)\n".write(toFile: dir.child("releases/\(release)/VERSION"), atomically: false, encoding: .utf8)
        }
        let link = dir.child("current")
        try DurableFiles.replaceSymlink(link, target: "releases/a")

        // Reader and writer on threads of their own: a busy loop or 1,000 fsyncs on Swift's
        // cooperative pool (two threads here) would stall every other test in the process.
        let done = ManagedFlag()
        let counts = ReadCounts()
        let reader = Thread {
            let path = link + "/VERSION"
            var buffer = [UInt8](repeating: 0, count: 16)
            while !done.isSet {
                let fd = open(path, O_RDONLY)
                var missed = fd < 0
                if fd >= 0 {
                    missed = read(fd, &buffer, 16) <= 0
                    close(fd)
                }
                counts.record(missed: missed)
            }
            counts.finish()
        }
        reader.start()
        try await Blocking.run {
            for i in 0..<1000 {
                try DurableFiles.replaceSymlink(link, target: i % 2 == 0 ? "releases/b" : "releases/a")
            }
        }
        done.set()
        let (reads, misses) = await counts.final()
        #expect(reads > 0)
        #expect(misses == 0, "current/VERSION was missing \(misses) times in \(reads) reads")
        #expect(try String(contentsOfFile: link + "/VERSION", encoding: .utf8) == "a\n")
    }
}

final class ReadCounts: @unchecked Sendable {
    private let lock = NSLock()
    private var reads = 0, misses = 0, finished = false

    func record(missed: Bool) {
        lock.lock()
        reads += 1
        if missed { misses += 1 }
        lock.unlock()
    }

    func finish() { lock.lock(); finished = true; lock.unlock() }

    private func snapshot() -> (done: Bool, reads: Int, misses: Int) {
        lock.lock()
        defer { lock.unlock() }
        return (finished, reads, misses)
    }

    func final() async -> (Int, Int) {
        while true {
            let now = snapshot()
            if now.done { return (now.reads, now.misses) }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }
}

final class ManagedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
    func set() { lock.lock(); value = true; lock.unlock() }
}
