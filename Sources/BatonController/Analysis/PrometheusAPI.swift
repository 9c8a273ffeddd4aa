import AsyncHTTPClient
import BatonProtocol
import Foundation
import NIOCore

/// The controller's side of Prometheus's HTTP API: instant queries (`/api/v1/query`) and
/// range queries (`/api/v1/query_range`), over the process's shared HTTP client.
struct PrometheusAPI: Sendable {
    let server: String
    let timeout: BatonDuration
    var client: HTTPClient = WebhookClient.shared

    struct QueryError: Error, CustomStringConvertible {
        let description: String
    }

    /// One value per series (NaN kept: it is no data to the caller).
    func instant(_ query: String, at time: Date) async throws(QueryError) -> [Double] {
        let data = try await get("/api/v1/query", ["query": query, "time": Self.seconds(time)])
        switch data["resultType"] as? String {
        case "vector":
            return ((data["result"] as? [[String: Any]]) ?? []).compactMap { Self.value($0["value"]) }
        case "scalar":
            return Self.value(data["result"]).map { [$0] } ?? []
        default:
            throw QueryError(description: "the query returns a \(data["resultType"] ?? "?"); it must return an instant vector or a scalar")
        }
    }

    /// Every sample of every series between `start` and `end`, `step` apart.
    func range(_ query: String, start: Date, end: Date, step: BatonDuration) async throws(QueryError) -> [Double] {
        let data = try await get(
            "/api/v1/query_range",
            ["query": query, "start": Self.seconds(start), "end": Self.seconds(end), "step": "\(Double(step.milliseconds) / 1000)"])
        let series = (data["result"] as? [[String: Any]]) ?? []
        return series.flatMap { (($0["values"] as? [Any]) ?? []).compactMap { Self.value($0) } }.filter { !$0.isNaN }
    }

    private static func seconds(_ date: Date) -> String { String(format: "%.3f", date.timeIntervalSince1970) }

    /// `[ <time>, "<value>" ]`.
    private static func value(_ pair: Any?) -> Double? {
        guard let pair = pair as? [Any], pair.count == 2, let text = pair[1] as? String else { return nil }
        switch text {
        case "NaN": return .nan
        case "+Inf": return .infinity
        case "-Inf": return -.infinity
        default: return Double(text)
        }
    }

    private func get(_ path: String, _ parameters: [String: String]) async throws(QueryError) -> [String: Any] {
        var components = URLComponents(string: server.hasSuffix("/") ? String(server.dropLast()) + path : server + path)
        components?.queryItems = parameters.sorted { $0.key < $1.key }.map { URLQueryItem(name: $0.key, value: $0.value) }
        // `+` means a space in a query string: encode it, or `a + b` reaches PromQL as `a   b`.
        let encoded = components?.percentEncodedQuery?.replacingOccurrences(of: "+", with: "%2B")
        components?.percentEncodedQuery = encoded
        guard let url = components?.url else { throw QueryError(description: "\(server) is not a usable URL") }
        let body: ByteBuffer
        let status: UInt
        do {
            var request = HTTPClientRequest(url: url.absoluteString)
            request.headers.add(name: "User-Agent", value: "baton/\(ControllerVersion.current)")
            let response = try await client.execute(request, timeout: .milliseconds(Int64(timeout.milliseconds)))
            status = response.status.code
            body = try await response.body.collect(upTo: 4 << 20)
        } catch {
            throw QueryError(description: "Prometheus at \(server): \(Self.describe(error))")
        }
        guard let json = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any] else {
            throw QueryError(description: "Prometheus at \(server): status \(status), not its query API's JSON")
        }
        guard json["status"] as? String == "success", let data = json["data"] as? [String: Any] else {
            throw QueryError(
                description: "Prometheus at \(server): status \(status): \(json["errorType"] ?? "error"): \(json["error"] ?? "no reason given")")
        }
        return data
    }

    private static func describe(_ error: any Error) -> String {
        let text = "\(error)"
        if text.contains("connectTimeout") || text.contains("deadlineExceeded") { return "timed out" }
        if text.lowercased().contains("refused") { return "connection refused" }
        return text
    }
}
