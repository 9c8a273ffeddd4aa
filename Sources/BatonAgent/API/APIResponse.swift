import BatonProtocol
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
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

