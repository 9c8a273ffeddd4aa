#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import BatonProtocol

/// One instant query against Prometheus's HTTP API (`GET /api/v1/query?query=…`), over the
/// health checker's own HTTP probe: no HTTP client library in the agent.
struct PrometheusQuery: Sendable {
    /// What a query gave: sample values (one per series; a scalar is one), or why not.
    enum Outcome: Sendable, Equatable {
        case values([Double])
        /// The server could not be asked, or refused the query: an error, not a failure.
        case error(String)
    }

    let probe: NetworkProbe

    func run(server: String, query: String, timeout: BatonDuration) async -> Outcome {
        let url: HealthURL
        do {
            url = try Self.url(server: server, query: query)
        } catch {
            return .error("invalid server URL: \(error)")
        }
        switch await probe.http(url, readBody: true, timeout: timeout) {
        case .failure(let failure):
            return .error("Prometheus at \(server): \(failure.description)")
        case .success(let response):
            return Self.parse(status: response.status, body: response.body)
        }
    }

    /// `server` + `/api/v1/query?query=` + the query, percent-encoded.
    static func url(server: String, query: String) throws(HealthURL.ParseError) -> HealthURL {
        let base = server.hasSuffix("/") ? String(server.dropLast()) : server
        return try HealthURL(parsing: base + "/api/v1/query?query=" + percentEncoded(query))
    }

    static func percentEncoded(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = Array("0123456789ABCDEF".unicodeScalars)
                out.unicodeScalars.append("%")
                out.unicodeScalars.append(hex[Int(byte >> 4)])
                out.unicodeScalars.append(hex[Int(byte & 0x0F)])
            }
        }
        return out
    }

    /// The API's answer: `{"status":"success","data":{"resultType":…,"result":…}}` or
    /// `{"status":"error","errorType":…,"error":…}`.
    static func parse(status: Int, body: [UInt8]) -> Outcome {
        let response: Response
        do {
            response = try JSONDecoder().decode(Response.self, from: Data(body))
        } catch {
            if body.count >= NetworkProbe.bodyLimit { return .error("the answer is larger than \(NetworkProbe.bodyLimit >> 10) KiB") }
            return .error("status \(status): the answer is not Prometheus's query API JSON")
        }
        guard response.status == "success", let data = response.data else {
            return .error("status \(status): \(response.errorType ?? "error"): \(response.error ?? "no reason given")")
        }
        switch data.result {
        case .samples(let samples): return .values(samples)
        case .unsupported(let type):
            return .error("the query returns a \(type); it must return an instant vector or a scalar")
        }
    }

    private struct Response: Decodable {
        var status: String
        var data: DataPart?
        var errorType: String?
        var error: String?
    }

    private struct DataPart: Decodable {
        enum Result {
            case samples([Double])
            case unsupported(String)
        }

        var result: Result

        private enum CodingKeys: String, CodingKey { case resultType, result }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let type = try c.decode(String.self, forKey: .resultType)
            switch type {
            case "vector":
                result = .samples(try c.decode([Series].self, forKey: .result).map(\.value.value))
            case "scalar":
                result = .samples([try c.decode(Sample.self, forKey: .result).value])
            default:
                result = .unsupported(type == "matrix" ? "range vector" : type)
            }
        }
    }

    private struct Series: Decodable {
        var value: Sample
    }

    /// `[ <unix time>, "<value>" ]`; values are strings so that NaN and ±Inf fit.
    private struct Sample: Decodable {
        var value: Double

        init(from decoder: any Decoder) throws {
            var c = try decoder.unkeyedContainer()
            _ = try c.decode(Double.self)
            let text = try c.decode(String.self)
            switch text {
            case "NaN": value = .nan
            case "+Inf", "Inf": value = .infinity
            case "-Inf": value = -.infinity
            default:
                guard let parsed = Double(text) else {
                    throw DecodingError.dataCorruptedError(in: c, debugDescription: "'\(text)' is not a number")
                }
                value = parsed
            }
        }
    }
}
