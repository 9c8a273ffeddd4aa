@testable import BatonArchive
import Foundation
import Testing

/// A tree on a file system that lives in memory is not synced: nothing there survives a
/// power loss, and the syncs only cost system calls (a `syncfs` a walk over every inode).
@Suite struct TreeDurabilityTests {
    /// The file system type as `stat -f` (coreutils) reports it, in hex.
    static func statType(_ path: String) throws -> Int64? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/stat")
        process.arguments = ["-f", "-c", "%t", path]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        process.waitUntilExit()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        return Int64(text, radix: 16)
    }

    @Test("tmpfs: nothing to sync, whatever was asked; a disk: what was asked", arguments: ["/dev/shm", "."])
    func effective(path: String) throws {
        try #require(FileManager.default.fileExists(atPath: path))
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        try #require(fd >= 0)
        defer { close(fd) }
        let type = try #require(TreeDurability.fileSystemType(fd))
        #expect(type == (try Self.statType(path)), "fstatfs and stat -f agree on the type")
        let inMemory = TreeDurability.memoryFileSystems.contains(type)
        if path == "/dev/shm" { #expect(inMemory, "/dev/shm is a tmpfs on Linux") }
        for mode in TreeDurability.allCases {
            #expect(mode.effective(forDirectory: fd) == (inMemory ? .none : mode))
        }
    }
}
