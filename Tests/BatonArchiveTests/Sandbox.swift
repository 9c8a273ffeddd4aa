import BatonArchive
import BatonTestSupport
import Foundation
import Testing

/// A temporary directory laid out for escape tests:
///
///     <dir>/staging/            the (empty) extraction target
///     <dir>/outside/keep.txt    a planted sibling that must never change
///     <dir>/archive.tar[.gz]    the archive under test
///
/// Hostile names aim at `outside/<marker>` or `../<marker>`; `nothingOutside()` checks that
/// neither the sibling, the sandbox nor its parent gained or lost anything.
struct Sandbox {
    static let sentinel = "planted by the test; must not change\n"

    let dir: TemporaryDirectory
    /// A file name unique to this sandbox, used as the target of escape attempts.
    let marker = "baton-escape-\(UInt64.random(in: 0...UInt64.max))"

    var staging: String { dir.child("staging") }
    var outside: String { dir.child("outside") }
    var parent: String { (dir.path as NSString).deletingLastPathComponent }

    init() throws {
        dir = try TemporaryDirectory(prefix: "baton-archive")
        try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: false)
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: false)
        try Self.sentinel.write(toFile: "\(outside)/keep.txt", atomically: false, encoding: .utf8)
    }

    func remove() { dir.remove() }

    func archivePath(_ format: ArchiveFormat) -> String {
        dir.child(format == .tar ? "archive.tar" : "archive.tar.gz")
    }

    /// Writes `bytes` as the archive and extracts it into `staging`.
    func extract(
        raw bytes: [UInt8], format: ArchiveFormat, limits: ExtractionLimits = ExtractionLimits()
    ) -> Result<ExtractionSummary, ExtractionError> {
        let path = archivePath(format)
        do {
            try Data(bytes).write(to: URL(fileURLWithPath: path))
        } catch {
            return .failure(ExtractionError(.ioError, "test could not write the archive: \(error)"))
        }
        do throws(ExtractionError) {
            return .success(try ArchiveExtractor.extract(archiveAt: path, format: format, into: staging, limits: limits))
        } catch {
            return .failure(error)
        }
    }

    /// Feeds archive bytes to an `ArchiveStream` (durable, as the agent's one read of an
    /// artifact uses it) in chunks of `chunk` bytes, and extracts them into `staging`.
    func stream(
        raw bytes: [UInt8], format: ArchiveFormat, limits: ExtractionLimits = ExtractionLimits(), chunk: Int
    ) -> Result<ExtractionSummary, ExtractionError> {
        do {
            let stream = try ArchiveStream(format: format, into: staging, limits: limits, durability: .eachFile)
            defer { stream.close() }
            try bytes.withUnsafeBytes { all in
                var offset = 0
                while offset < all.count, stream.wantsMore {
                    let end = min(offset + chunk, all.count)
                    try stream.consume(UnsafeRawBufferPointer(rebasing: all[offset..<end]))
                    offset = end
                }
            }
            return .success(try stream.finish())
        } catch let error as ExtractionError {
            return .failure(error)
        } catch {
            return .failure(ExtractionError(.ioError, "test: \(error)"))
        }
    }

    /// Extracts tar bytes, gzipping them first for `.tarGz`.
    func extract(
        tar bytes: [UInt8], format: ArchiveFormat = .tar, limits: ExtractionLimits = ExtractionLimits()
    ) -> Result<ExtractionSummary, ExtractionError> {
        extract(raw: format == .tarGz ? GzipWriter.compress(bytes) : bytes, format: format, limits: limits)
    }

    /// True when nothing outside `staging` was created, removed or changed.
    func nothingOutside() -> Bool {
        let fm = FileManager.default
        let top = Set((try? fm.contentsOfDirectory(atPath: dir.path)) ?? [])
        let allowed: Set = ["staging", "outside", "archive.tar", "archive.tar.gz", "source", "reference"]
        guard top.isSubset(of: allowed), top.contains("staging"), top.contains("outside") else {
            Issue.record("sandbox holds \(top.sorted())")
            return false
        }
        guard (try? fm.contentsOfDirectory(atPath: outside)) == ["keep.txt"] else {
            Issue.record("outside holds \(String(describing: try? fm.contentsOfDirectory(atPath: outside)))")
            return false
        }
        guard (try? String(contentsOfFile: "\(outside)/keep.txt", encoding: .utf8)) == Self.sentinel else {
            Issue.record("the planted file changed")
            return false
        }
        // Hard links to the planted file would show as a link count above 1.
        guard let links = (try? fm.attributesOfItem(atPath: "\(outside)/keep.txt"))?[.referenceCount] as? Int, links == 1 else {
            Issue.record("the planted file gained a hard link")
            return false
        }
        guard !fm.fileExists(atPath: "\(parent)/\(marker)"), !fm.fileExists(atPath: "/\(marker)"),
            !fm.fileExists(atPath: "/tmp/\(marker)")
        else {
            Issue.record("an escape target exists")
            return false
        }
        return true
    }

    /// Paths under `staging`, relative, sorted (directories included).
    func stagedPaths() -> [String] {
        guard let enumerator = FileManager.default.enumerator(atPath: staging) else { return [] }
        return (enumerator.allObjects as? [String] ?? []).sorted()
    }

    func staged(_ relative: String) -> String { "\(staging)/\(relative)" }

    /// `lstat` of a staged path.
    func status(_ relative: String) -> stat? {
        var result = stat()
        return lstat(staged(relative), &result) == 0 ? result : nil
    }

    /// Permission bits (with setuid, setgid and sticky) of a staged path.
    func mode(_ relative: String) -> mode_t? { status(relative).map { $0.st_mode & 0o7777 } }

    func contents(_ relative: String) -> [UInt8]? {
        (try? Data(contentsOf: URL(fileURLWithPath: staged(relative)))).map(Array.init)
    }

    func linkTarget(_ relative: String) -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: staged(relative))
    }
}

/// A tar archive built with `TarBuilder`, ended with the two zero blocks.
func tar(_ build: (inout TarBuilder) -> Void) -> [UInt8] {
    var builder = TarBuilder()
    build(&builder)
    builder.end()
    return builder.bytes
}

/// Extracts the archive `make` builds, as tar and as tar.gz, each into a fresh sandbox, and
/// expects a refusal with `code` and nothing written outside the staging directory.
@discardableResult
func expectRefusal(
    _ code: ExtractionError.Code,
    limits: ExtractionLimits = ExtractionLimits(),
    formats: [ArchiveFormat] = ArchiveFormat.allCases,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ make: (Sandbox) -> [UInt8]
) throws -> [ExtractionError] {
    var errors: [ExtractionError] = []
    for format in formats {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        switch sandbox.extract(tar: make(sandbox), format: format, limits: limits) {
        case .success(let summary):
            Issue.record("expected \(code.rawValue) for \(format), but extraction succeeded: \(summary)", sourceLocation: sourceLocation)
        case .failure(let error):
            #expect(error.code == code, "\(format): \(error)", sourceLocation: sourceLocation)
            #expect(error.description.hasPrefix("\(error.code.rawValue): "), sourceLocation: sourceLocation)
            errors.append(error)
        }
        #expect(sandbox.nothingOutside(), "\(format)", sourceLocation: sourceLocation)

        // The same archive fed chunk by chunk (odd sizes, durable), as the agent's one read
        // of `batond apply` feeds it: refused with the same code, nothing outside.
        let streamed = try Sandbox()
        defer { streamed.remove() }
        let bytes = make(streamed)
        let raw = format == .tarGz ? GzipWriter.compress(bytes) : bytes
        switch streamed.stream(raw: raw, format: format, limits: limits, chunk: 1_021) {
        case .success(let summary):
            Issue.record("expected \(code.rawValue) for \(format), streamed, but extraction succeeded: \(summary)", sourceLocation: sourceLocation)
        case .failure(let error):
            #expect(error.code == code, "\(format), streamed: \(error)", sourceLocation: sourceLocation)
        }
        #expect(streamed.nothingOutside(), "\(format), streamed", sourceLocation: sourceLocation)
    }
    return errors
}

/// Like `expectRefusal`, for archive bytes used as they are (already gzipped for `.tarGz`).
@discardableResult
func expectRefusal(
    _ code: ExtractionError.Code, raw bytes: [UInt8], format: ArchiveFormat,
    sourceLocation: SourceLocation = #_sourceLocation
) throws -> ExtractionError? {
    let sandbox = try Sandbox()
    defer { sandbox.remove() }
    var refusal: ExtractionError?
    switch sandbox.extract(raw: bytes, format: format) {
    case .success(let summary):
        Issue.record("expected \(code.rawValue), but extraction succeeded: \(summary)", sourceLocation: sourceLocation)
    case .failure(let error):
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        refusal = error
    }
    #expect(sandbox.nothingOutside(), sourceLocation: sourceLocation)
    return refusal
}
