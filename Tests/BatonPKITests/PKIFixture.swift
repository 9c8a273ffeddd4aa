import BatonPKI
import BatonTestSupport
import Foundation
import Testing

/// A temporary directory holding a fresh fleet CA in `<dir>/ca`.
struct PKIFixture {
    let directory: TemporaryDirectory
    let ca: FleetCA

    init(name: String? = nil) throws {
        directory = try TemporaryDirectory(prefix: "baton-pki")
        ca = try FleetCA.create(in: directory.child("ca"), name: name)
    }

    var caFile: String { ca.certificatePath }

    func child(_ name: String) -> String { directory.child(name) }

    func remove() { directory.remove() }

    /// Writes `text` to `<dir>/<name>` and returns the path.
    @discardableResult
    func write(_ text: String, to name: String) throws -> String {
        let path = child(name)
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        return path
    }
}

/// Expects `body` to fail with a `PKIError` of `code`.
func expectPKIError<T>(
    _ code: PKIError.Code,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws(PKIError) -> T
) {
    do {
        _ = try body()
        Issue.record("expected \(code.rawValue), but it succeeded", sourceLocation: sourceLocation)
    } catch {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        #expect(!error.message.isEmpty, sourceLocation: sourceLocation)
    }
}

/// The DER bytes inside a PEM block.
func derBytes(ofPEM pem: String) throws -> [UInt8] {
    let base64 = pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
    return Array(try #require(Data(base64Encoded: base64)))
}

/// A PEM block of `type` around `der`.
func pem(_ type: String, der: [UInt8]) -> String {
    let base64 = Data(der).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
    return "-----BEGIN \(type)-----\n\(base64)\n-----END \(type)-----\n"
}
