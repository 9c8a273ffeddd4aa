import BatonProtocol
import Foundation
import Hummingbird
import NIOCore

/// JSON answers, encoded the one way Baton encodes JSON (`BatonJSON`: sorted keys,
/// RFC 3339 timestamps), one document per body, newline-terminated.
enum APIResponse {
    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        var bytes = try BatonJSON.encode(value)
        bytes.append(0x0A)
        return Response(
            status: status, headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

/// The answer to `PUT /v1/artifacts/sha256/{digest}`: what the agent now holds.
/// (A wire type: it belongs in BatonProtocol's `WireTypes.swift` once the controller
/// decodes it.)
public struct ArtifactReceipt: Codable, Sendable, Equatable {
    public var sha256: String
    public var size: UInt64
    /// True when the agent already held the artifact and the upload was not needed.
    public var existing: Bool

    public init(sha256: String, size: UInt64, existing: Bool) {
        self.sha256 = sha256
        self.size = size
        self.existing = existing
    }
}
