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

        let done = ManagedFlag()
        let reader = Task.detached { () -> (reads: Int, misses: Int) in
            var reads = 0, misses = 0
            let path = link + "/VERSION"
            var buffer = [UInt8](repeating: 0, count: 16)
            while !done.isSet {
                let fd = open(path, O_RDONLY)
                if fd < 0 {
                    misses += 1
                } else {
                    if read(fd, &buffer, 16) <= 0 { misses += 1 }
                    close(fd)
                }
                reads += 1
            }
            return (reads, misses)
        }
        for i in 0..<1000 {
            try DurableFiles.replaceSymlink(link, target: i % 2 == 0 ? "releases/b" : "releases/a")
        }
        done.set()
        let (reads, misses) = await reader.value
        #expect(reads > 0)
        #expect(misses == 0, "current/VERSION was missing \(misses) times in \(reads) reads")
        #expect(try String(contentsOfFile: link + "/VERSION", encoding: .utf8) == "a\n")
    }
}

final class ManagedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
    func set() { lock.lock(); value = true; lock.unlock() }
}
