import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

/// The package's `Protocol/` directory: spec, schema, test vectors and the Python tools
/// that check Baton against independent implementations. Found from this file's path,
/// not through SwiftPM resources.
enum ProtocolFiles {
    static let packageRoot: String = {
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while dir.path != "/" {
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) {
                return dir.path
            }
            dir = dir.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }()

    static var directory: String { packageRoot + "/Protocol" }
    static var vectors: String { directory + "/vectors" }
    static var cases: String { vectors + "/cases" }
    static var schema: String { directory + "/manifest.schema.json" }
    static var interop: String { directory + "/interop" }

    static func key(_ name: String, private isPrivate: Bool) -> String {
        "\(vectors)/keys/\(name).test-only.\(isPrivate ? "key" : "pub")"
    }

    static func signingKey(_ name: String) throws -> SigningKey {
        try SigningKey(pem: String(contentsOfFile: key(name, private: true), encoding: .utf8))
    }

    static func verifyingKey(_ name: String) throws -> VerifyingKey {
        try VerifyingKey(pem: String(contentsOfFile: key(name, private: false), encoding: .utf8))
    }

    /// `Protocol/vectors/trust.yaml`, key paths resolved relative to it.
    static func trustPolicy() throws -> TrustPolicy {
        let file = vectors + "/trust.yaml"
        return try TrustPolicy.parse(yaml: String(contentsOfFile: file, encoding: .utf8), file: file) { path in
            try String(contentsOfFile: vectors + "/" + path, encoding: .utf8)
        }
    }
}

/// One file of `Protocol/vectors/cases` (format: `Protocol/vectors/README.md`).
struct ProtocolVector: Sendable {
    enum Expectation: Sendable, Equatable {
        case accept(signers: [String], isRollback: Bool, requiredSignatures: Int?, payloadDigest: String?, breakGlass: Bool)
        case refuse(VerificationCode)
    }

    let name: String
    let description: String
    /// The envelope bytes as the verifier receives them.
    let envelope: [UInt8]
    let host: HostIdentity
    let history: AppHistory
    let now: Date
    let expect: Expectation

    /// The names of all vectors, sorted. Empty if the directory cannot be read
    /// (`VectorTests.vectorsArePresent` fails then).
    static let names: [String] = {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: ProtocolFiles.cases)) ?? []
        return files.filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.sorted()
    }()

    static func load(_ name: String) throws -> ProtocolVector {
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(ProtocolFiles.cases)/\(name).json"))
        let root = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any], "\(name): not an object")

        let envelope: [UInt8]
        switch root["envelope"] {
        case let text as String:
            envelope = Array(text.utf8)
        case let object as [String: Any]:
            envelope = Array(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
        default:
            throw TestSupportError("\(name): envelope is neither an object nor a string")
        }

        let host = try #require(root["host"] as? [String: Any])
        let history = try #require(root["history"] as? [String: Any])
        let expect = try #require(root["expect"] as? [String: Any])
        let expectation: Expectation
        switch expect["verdict"] as? String {
        case "accept":
            expectation = .accept(
                signers: try #require(expect["signers"] as? [String]),
                isRollback: try #require(expect["isRollback"] as? Bool),
                requiredSignatures: (expect["requiredSignatures"] as? NSNumber)?.intValue,
                payloadDigest: expect["payloadDigest"] as? String,
                breakGlass: expect["breakGlass"] as? Bool ?? false)
        case "refuse":
            let raw = try #require(expect["code"] as? String)
            expectation = .refuse(try #require(VerificationCode(rawValue: raw), "\(name): unknown code '\(raw)'"))
        default:
            throw TestSupportError("\(name): expect.verdict is neither accept nor refuse")
        }

        // history.approvedReleases: release -> the approved payload (base64), as a host holds it.
        var approved: [String: Manifest] = [:]
        for (release, value) in try #require(history["approvedReleases"] as? [String: String], "\(name): history.approvedReleases") {
            let payload = try #require(Base64.decode(value), "\(name): approved payload of \(release) is not base64")
            approved[release] = try Manifest.parse(payload: payload)
        }

        let nowText = try #require(root["now"] as? String)
        return ProtocolVector(
            name: try #require(root["name"] as? String),
            description: try #require(root["description"] as? String),
            envelope: envelope,
            host: HostIdentity(hostID: host["hostID"] as? String, environment: try #require(host["environment"] as? String)),
            history: AppHistory(
                lastSerial: (history["lastSerial"] as? NSNumber).map { $0.uint64Value },
                lastPayloadDigest: history["lastPayloadDigest"] as? String,
                approvedReleases: approved),
            now: try #require(RFC3339.parse(nowText), "\(name): now '\(nowText)' is not RFC 3339"),
            expect: expectation)
    }

    /// Runs the vector through the single entry point an agent uses.
    func verify(policy: TrustPolicy) -> Result<VerifiedManifest, VerificationError> {
        Result { () throws(VerificationError) in
            try ManifestVerifier.verify(envelope: envelope, policy: policy, host: host, history: { _ in history }, now: now)
        }
    }

    /// The payload bytes, for vectors whose envelope parses.
    var payload: [UInt8]? { try? Envelope.parse(envelope).payload }
}

/// Python tools the tests run: independent implementations to check Baton against.
/// Missing tools fail the test with the command that installs them; they never skip.
enum Python {
    /// The test tools live in a virtual environment (scripts/test-python), never in the
    /// system Python; scripts/test puts it first on PATH.
    static let venvHint = #"PATH="$(scripts/test-python):$PATH" swift test (scripts/test does this)"#
    static let interopHint = venvHint

    /// Throws (failing the test, never skipping it) when `python3` or one of `modules` is
    /// missing, with the command that installs them.
    static func require(_ modules: [String], install hint: String) throws {
        let probe: ProcessResult
        do {
            probe = try ProcessRunner.run("/usr/bin/env", ["python3", "-c", "import " + modules.joined(separator: ", ")])
        } catch {
            throw TestSupportError("cannot run python3 (\(error)); install Python 3, then run: \(hint)")
        }
        guard probe.status == 0 else {
            let reason = probe.stderr.split(separator: "\n").last.map(String.init) ?? "exit status \(probe.status)"
            throw TestSupportError(
                probe.status == 127
                    ? "python3 is not on PATH; install Python 3, then run: \(hint)"
                    : "python3 cannot import \(modules.joined(separator: ", ")) (\(reason)); run: \(hint)")
        }
    }

    /// Runs a script of `Protocol/` with python3.
    static func run(_ script: String, _ arguments: [String]) throws -> ProcessResult {
        try ProcessRunner.run("/usr/bin/env", ["python3", "\(ProtocolFiles.directory)/\(script)"] + arguments)
    }
}
