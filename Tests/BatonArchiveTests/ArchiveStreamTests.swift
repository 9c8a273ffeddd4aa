import BatonArchive
import BatonTestSupport
import Foundation
import Testing

/// `ArchiveStream`: the extractor fed by its caller, as the agent's one read of an
/// artifact feeds it. Whatever the chunks, it makes the tree `extract(archiveAt:)` makes.
@Suite struct ArchiveStreamTests {
    static let archive = tar {
        $0.directory("./")
        $0.directory("./bin/", mode: 0o755)
        $0.file("./bin/server", "#!/bin/sh\necho hi\n", mode: 0o755)
        $0.directory("./lib/v1/", mode: 0o755)
        $0.file("./lib/v1/libapp.so", [UInt8](repeating: 0xab, count: 300_000), mode: 0o644)
        $0.file("./empty", "", mode: 0o644)
        $0.symlink("./lib/current", to: "v1")
        $0.hardLink("./bin/server-again", to: "./bin/server")
        for i in 0..<50 { $0.file("./many/f\(i).txt", "file \(i)\n", mode: 0o640) }
    }

    @Test(arguments: [1, 511, 4096, 1 << 20])
    func anyChunkSizeMakesTheSameTree(_ chunk: Int) throws {
        for format in ArchiveFormat.allCases {
            let reference = try Sandbox()
            defer { reference.remove() }
            let expected = try reference.extract(tar: Self.archive, format: format).get()

            let streamed = try Sandbox()
            defer { streamed.remove() }
            let raw = format == .tarGz ? GzipWriter.compress(Self.archive) : Self.archive
            var summary = try streamed.stream(raw: raw, format: format, chunk: chunk).get()
            // The stream is durable, the reference not: only how it was synced differs.
            #expect(summary.synced != .automatic)
            summary.synced = expected.synced
            #expect(summary == expected, "\(format), chunks of \(chunk)")
            #expect(streamed.stagedPaths() == reference.stagedPaths())
            for path in reference.stagedPaths() {
                #expect(streamed.mode(path) == reference.mode(path), "\(path)")
                #expect(streamed.contents(path) == reference.contents(path), "\(path)")
            }
            #expect(streamed.linkTarget("lib/current") == "v1")
            #expect(streamed.status("bin/server")?.st_nlink == 2)
            #expect(streamed.nothingOutside())
        }
    }

    /// Bytes after the end are taken and ignored; the stream says when it wants no more.
    @Test func trailingBytesAreIgnored() throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        let raw = Self.archive + [UInt8](repeating: 0, count: 10_240)
        let summary = try sandbox.stream(raw: raw, format: .tar, chunk: 4096).get()
        #expect(summary.files == 53)  // bin/server, libapp.so, empty and 50 in many/ (the hard link is not a file)
    }

    /// After a refusal the stream is finished: later chunks are ignored, not extracted.
    @Test func aRefusalEndsTheStream() throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        let bad = tar { $0.file("../escape", "x") }
        let stream = try ArchiveStream(format: .tar, into: sandbox.staging, durability: .eachFile)
        defer { stream.close() }
        #expect(throws: ExtractionError.self) { try bad.withUnsafeBytes { try stream.consume($0) } }
        #expect(!stream.wantsMore)
        try Self.archive.withUnsafeBytes { try stream.consume($0) }
        #expect(sandbox.stagedPaths().isEmpty)
        #expect(sandbox.nothingOutside())
    }
}
