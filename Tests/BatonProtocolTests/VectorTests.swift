import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

/// Runs every vector of `Protocol/vectors/cases` (written by the independent Python
/// generator) through `ManifestVerifier`, the entry point the agent uses.
@Suite struct VectorTests {
    static let testKeyNames = ["alice", "bob", "carol", "mallory"]

    @Test func vectorsArePresent() {
        #expect(ProtocolVector.names.count >= 60, "no vectors found in \(ProtocolFiles.cases)")
    }

    @Test(arguments: ProtocolVector.names)
    func vector(_ name: String) throws {
        let vector = try ProtocolVector.load(name)
        #expect(vector.name == name, "the file name and the vector's name differ")
        let policy = try ProtocolFiles.trustPolicy()
        let context = "\(name): \(vector.description)"

        switch (vector.expect, vector.verify(policy: policy)) {
        case let (.refuse(code), .failure(error)):
            #expect(error.code == code, "\(context)\nexpected \(code.rawValue), got \(error)")
            #expect(error.code.httpStatus == Self.httpStatus[code], "\(code.rawValue)")
        case let (.refuse(code), .success(verified)):
            Issue.record("""
                \(context)
                expected \(code.rawValue), but it was accepted: signers \(verified.signers.map(\.names)), \
                isRollback \(verified.isRollback), requiredSignatures \(verified.requiredSignatures)
                """)
        case let (.accept, .failure(error)):
            Issue.record("\(context)\nexpected accept, got \(error)")
        case let (.accept(signers, isRollback, required, digest, breakGlass), .success(verified)):
            #expect(verified.signers.map(\.keyid) == signers, "\(context)")
            #expect(verified.breakGlass == breakGlass, "\(context)")
            #expect(verified.isRollback == isRollback, "\(context)")
            if let required { #expect(verified.requiredSignatures == required, "\(context)") }
            if let digest {
                #expect(verified.payloadDigest == digest, "\(context)")
                #expect(Digest.sha256Hex(verified.payload) == digest, "\(context)")
            }
            // What was accepted is what the payload says, parsed from the verified bytes.
            #expect(verified.manifest == (try BatonJSON.decode(Manifest.self, from: Data(verified.payload))))
        }
    }

    /// The statuses of PROTOCOL.md's error table, which mirror `VerificationCode.httpStatus`.
    static let httpStatus: [VerificationCode: Int] = [
        .malformed: 400, .tooLarge: 413, .unsupportedType: 422, .signatureInvalid: 403, .untrustedKey: 403,
        .thresholdNotMet: 403, .returnMismatch: 403, .invalidManifest: 422, .expired: 403, .notYetValid: 403, .wrongEnvironment: 403,
        .notTargeted: 403, .staleSerial: 409, .serialConflict: 409, .duplicate: 200, .validityTooLong: 403,
        .targetsRequired: 403, .changeFrozen: 403,
    ]

    @Test func everyVerificationCodeHasAVector() throws {
        var codes: [VerificationCode: Int] = [:]
        var accepted = 0
        for name in ProtocolVector.names {
            switch try ProtocolVector.load(name).expect {
            case .refuse(let code): codes[code, default: 0] += 1
            case .accept: accepted += 1
            }
        }
        for code in VerificationCode.allCases {
            #expect(codes[code, default: 0] >= 1, "no vector expects \(code.rawValue)")
        }
        #expect(accepted >= 10)
    }

    /// The error table in PROTOCOL.md names every code with the status the agent answers.
    @Test func theSpecListsEveryCodeWithItsStatus() throws {
        let spec = try String(contentsOfFile: ProtocolFiles.directory + "/PROTOCOL.md", encoding: .utf8)
        for code in VerificationCode.allCases {
            #expect(spec.contains("| `\(code.rawValue)` | \(code.httpStatus) |"),
                    "PROTOCOL.md has no error table row for \(code.rawValue) with status \(code.httpStatus)")
            #expect(code.httpStatus == Self.httpStatus[code])
        }
    }

    @Test func trustPolicyOfTheVectors() throws {
        let policy = try ProtocolFiles.trustPolicy()
        let staging = try #require(policy.environments["staging"])
        let production = try #require(policy.environments["production"])
        #expect(staging.threshold == 1)
        #expect(staging.rollbackThreshold == 1, "rollbackThreshold defaults to 1")
        #expect(production.threshold == 2)
        #expect(production.rollbackThreshold == 1)
        // Four names, three distinct keys: alice-backup is alice's key under another name.
        #expect(production.keys.count == 4)
        #expect(policy.verifyingKeys(for: "production").count == 3)
        #expect(policy.names(of: try ProtocolFiles.verifyingKey("alice")) == ["alice", "alice-backup"])
        #expect(!policy.keys.values.contains(try ProtocolFiles.verifyingKey("mallory")))
    }

    @Test(arguments: testKeyNames)
    func testKey(_ name: String) throws {
        let signing = try ProtocolFiles.signingKey(name)
        let verifying = try ProtocolFiles.verifyingKey(name)
        #expect(signing.verifyingKey == verifying)
        // The seed is SHA-256 of a published label (keys/README.md).
        #expect(signing.seed == Array(Digest.sha256Hex(Array("baton protocol test vectors: \(name) (TEST ONLY)".utf8))
            .hexBytes))
        let readme = try String(contentsOfFile: ProtocolFiles.vectors + "/keys/README.md", encoding: .utf8)
        #expect(readme.contains("| \(name) | `\(verifying.keyid)` |"), "keys/README.md lists another keyid for \(name)")
        // Baton writes the very PEM files the generator wrote (PKCS#8 v1 and SPKI, as OpenSSL does).
        #expect(signing.pem == (try String(contentsOfFile: ProtocolFiles.key(name, private: true), encoding: .utf8)))
        #expect(verifying.pem == (try String(contentsOfFile: ProtocolFiles.key(name, private: false), encoding: .utf8)))
    }

    /// Ed25519 is deterministic, so Baton signing the same payload with the same key must
    /// produce exactly the generator's signature bytes: the PAE matches byte for byte.
    @Test func batonSignaturesEqualTheGeneratorSignatures() throws {
        let keys = try Self.testKeyNames.map(ProtocolFiles.signingKey)
        var checked = 0
        for name in ProtocolVector.names {
            let vector = try ProtocolVector.load(name)
            guard case .accept(let signers, _, _, _, _) = vector.expect else { continue }
            let envelope = try Envelope.parse(vector.envelope)
            var ours = Envelope(payloadType: envelope.payloadType, payload: envelope.payload)
            for keyid in signers {
                let key = try #require(keys.first { $0.keyid == keyid }, "\(name): unknown signer \(keyid)")
                ours.sign(with: key)
            }
            for signature in ours.signatures {
                #expect(envelope.signatures.contains { $0.sig == signature.sig }, "\(name): Baton's signature differs")
                checked += 1
            }
        }
        #expect(checked >= 10)
    }

    /// The committed vectors are exactly what `generate.py` writes today.
    @Test func generatorReproducesTheCommittedVectors() throws {
        try Python.require(["cryptography"], install: Python.venvHint)
        let dir = try TemporaryDirectory(prefix: "baton-vectors")
        defer { dir.remove() }
        let run = try Python.run("vectors/generate.py", ["--out", dir.path])
        try #require(run.status == 0, "generate.py failed: \(run.stderr)")

        let generated = try Self.files(under: dir.path)
        let committed = try Self.files(under: ProtocolFiles.vectors).filter { $0 != "generate.py" }
        #expect(Set(committed).subtracting(generated).isEmpty,
                "committed but no longer generated: \(Set(committed).subtracting(generated).sorted())")
        #expect(Set(generated).subtracting(committed).isEmpty,
                "generated but not committed: \(Set(generated).subtracting(committed).sorted()); run python3 Protocol/vectors/generate.py")
        for file in generated where committed.contains(file) {
            let fresh = try Data(contentsOf: URL(fileURLWithPath: dir.child(file)))
            let old = try Data(contentsOf: URL(fileURLWithPath: "\(ProtocolFiles.vectors)/\(file)"))
            #expect(fresh == old, "\(file) differs from what generate.py writes; run python3 Protocol/vectors/generate.py")
        }
    }

    static func files(under root: String) throws -> [String] {
        let all = try FileManager.default.subpathsOfDirectory(atPath: root)
        return all.filter { path in
            var isDirectory: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: "\(root)/\(path)", isDirectory: &isDirectory)
            return !isDirectory.boolValue && !path.contains("__pycache__") && !path.hasSuffix(".pyc")
        }.sorted()
    }
}

private extension String {
    /// Bytes of a hex string (test helper; the input is always valid hex here).
    var hexBytes: [UInt8] {
        var bytes: [UInt8] = []
        var chars = Array(utf8)[...]
        while chars.count >= 2 {
            bytes.append(UInt8(String(decoding: chars.prefix(2), as: UTF8.self), radix: 16)!)
            chars = chars.dropFirst(2)
        }
        return bytes
    }
}
