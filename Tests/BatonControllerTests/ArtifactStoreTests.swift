import BatonController
import BatonProtocol
import BatonTestSupport
import Crypto
import Foundation
import Testing

/// The controller's artifact store: the copy, its digest and its format, read in pieces
/// through one buffer; nothing half-written is left behind when the input is bad.
@Suite("the controller's artifact store")
struct ArtifactStoreTests {
    static func incoming(_ state: ControllerState) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "\(state.root)/artifacts")) ?? []).filter { $0.hasPrefix(".incoming") }
    }

    @Test("a file of several pieces, not a whole number of them, is stored byte for byte under its SHA-256")
    func storesSeveralPieces() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        // A gzip magic number first, then 2.5 MiB and 7 bytes: three pieces, the last short.
        var bytes: [UInt8] = [0x1F, 0x8B]
        bytes += (0..<(5 << 19) + 5).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }
        let file = dir.child("web.tar.gz")
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        let state = ControllerState(root: dir.child("state"))

        let stored = try state.storeArtifact(file)

        let expected = Digest.hex(SHA256.hash(data: bytes))
        #expect(stored.sha256 == expected)
        #expect(stored.size == UInt64(bytes.count))
        #expect(stored.format == .tarGz)
        #expect(FileManager.default.contents(atPath: state.artifactPath(expected)) == Data(bytes))
        let mode = try FileManager.default.attributesOfItem(atPath: state.artifactPath(expected))[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(Self.incoming(state).isEmpty)
        let digest = try ControllerState.digest(of: file)
        #expect(digest.sha256 == expected && digest.size == UInt64(bytes.count))
    }

    @Test("a plain tar is told from a gzip, and an artifact stored twice keeps one copy")
    func plainTarTwice() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let file = dir.child("web.tar")
        try Data("ustar, not gzip".utf8).write(to: URL(fileURLWithPath: file))
        let state = ControllerState(root: dir.child("state"))
        let first = try state.storeArtifact(file)
        let second = try state.storeArtifact(file)
        #expect(first.format == .tar && first == second)
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(state.root)/artifacts/sha256") == [first.sha256])
        #expect(Self.incoming(state).isEmpty)
    }

    @Test("a missing, a directory and an empty artifact are refused with their codes, and leave nothing in the store")
    func refusals() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let state = ControllerState(root: dir.child("state"))
        try Data().write(to: URL(fileURLWithPath: dir.child("empty.tar.gz")))
        try FileManager.default.createDirectory(atPath: dir.child("a-directory"), withIntermediateDirectories: false)

        let cases: [(String, ControllerError.Code)] = [
            (dir.child("missing.tar.gz"), .artifactMissing), (dir.child("empty.tar.gz"), .artifactMismatch),
            (dir.child("a-directory"), .stateError),
        ]
        for (file, code) in cases {
            #expect(throws: ControllerError.self) { try state.storeArtifact(file) }
            do {
                _ = try state.storeArtifact(file)
            } catch {
                #expect(error.code == code, "\(file): \(error)")
                #expect(error.message.contains(file), "\(error)")
            }
            #expect(Self.incoming(state).isEmpty, "\(file)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: "\(state.root)/artifacts/sha256").isEmpty, "\(file)")
        }
        #expect(throws: ControllerError.self) { try ControllerState.digest(of: dir.child("missing.tar.gz")) }
    }
}
