#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Bounds every manifest must respect. They are generous for real services and tight
/// enough that no manifest can ask an agent to wait forever or keep unbounded data.
public enum ManifestLimits {
    public static let maxArtifactSize: UInt64 = 64 * 1024 * 1024 * 1024
    public static let maxTargets = 10_000
    public static let maxLifetime: TimeInterval = 366 * 86_400
    public static let hookTimeout = BatonDuration.seconds(1)...BatonDuration(milliseconds: 3_600_000)
    public static let checkTimeout = BatonDuration(milliseconds: 100)...BatonDuration.minutes(5)
    public static let checkInterval = BatonDuration(milliseconds: 100)...BatonDuration.minutes(10)
    public static let checkDeadline = BatonDuration.seconds(1)...BatonDuration(milliseconds: 3_600_000)
    public static let bake = BatonDuration.zero...BatonDuration(milliseconds: 24 * 3_600_000)
    public static let keep = 1...100
    public static let maxChecks = 16
    public static let maxArguments = 256
    public static let maxArgumentBytes = 4096
    public static let maxShellBytes = 16 * 1024
    public static let maxNotesBytes = 8 * 1024
    public static let maxOwnerBytes = 256
    public static let maxSourceBytes = 512
    public static let maxURLBytes = 2048
    public static let maxQueryBytes = 4096
    public static let metricLimit = 0...100
    /// A `prometheus` check's own `interval` and its `window`.
    public static let metricInterval = BatonDuration.seconds(1)...BatonDuration.minutes(60)
    public static let metricWindow = BatonDuration.seconds(1)...BatonDuration.minutes(720 * 60)
}

extension Manifest {
    /// Reads a manifest from payload bytes exactly as an agent does: the bytes pass
    /// `StrictJSON` first (read to the end, no duplicate member, nesting bounded), so the
    /// decoder only ever sees payloads every JSON reader agrees on; then every field is
    /// decoded and every bound checked. Throws `invalid_manifest`.
    public static func parse(payload: [UInt8]) throws(VerificationError) -> Manifest {
        do {
            try StrictJSON.check(payload)
        } catch {
            throw VerificationError(.invalidManifest, error.description)
        }
        let manifest: Manifest
        do {
            manifest = try BatonJSON.decode(Manifest.self, from: Data(payload))
        } catch let error as DecodingError {
            throw VerificationError(.invalidManifest, "the payload is not a manifest v1: \(error.batonSummary)")
        } catch {
            throw VerificationError(.invalidManifest, "the payload is not a manifest v1: \(error)")
        }
        try manifest.validate()
        return manifest
    }

    /// Every problem with this manifest, in field order; empty when it is valid.
    public func problems() -> [String] {
        var problems: [String] = []
        func name(_ field: String, _ value: String) {
            if !Name.isValid(value) {
                problems.append("\(field) '\(value)' must match \(Name.pattern)")
            }
        }
        name("app", app)
        name("release", release)
        name("environment", environment)
        if serial == 0 { problems.append("serial must be at least 1") }
        if let targets {
            if targets.isEmpty { problems.append("targets, when present, must name at least one host") }
            if targets.count > ManifestLimits.maxTargets {
                problems.append("targets names \(targets.count) hosts; at most \(ManifestLimits.maxTargets)")
            }
            for host in targets { name("targets entry", host) }
            if Set(targets).count != targets.count { problems.append("targets lists a host twice") }
        }
        if expiresAt <= issuedAt { problems.append("expiresAt must be later than issuedAt") }
        if expiresAt.timeIntervalSince(issuedAt) > ManifestLimits.maxLifetime {
            problems.append("a manifest may be valid for at most 366 days")
        }
        problems += artifact.problems()
        if let prepare = hooks?.prepare { problems += prepare.problems(field: "hooks.prepare") }
        if let activate = hooks?.activate { problems += activate.problems(field: "hooks.activate") }
        if let health { problems += health.problems() }
        if let bake, !ManifestLimits.bake.contains(bake) {
            problems.append("bake \(bake) is out of bounds (0s to 24h)")
        }
        if let keep, !ManifestLimits.keep.contains(keep) {
            problems.append("keep \(keep) is out of bounds (1 to 100)")
        }
        problems += textProblems("notes", notes, max: ManifestLimits.maxNotesBytes, multiline: true)
        problems += textProblems("owner", owner, max: ManifestLimits.maxOwnerBytes, multiline: false)
        problems += textProblems("source", source, max: ManifestLimits.maxSourceBytes, multiline: false)
        return problems
    }

    /// Throws `invalid_manifest` naming every problem.
    public func validate() throws(VerificationError) {
        let problems = problems()
        if !problems.isEmpty {
            throw VerificationError(.invalidManifest, problems.joined(separator: "; "))
        }
    }
}

extension ArtifactReference {
    func problems() -> [String] {
        var problems: [String] = []
        if !Digest.isSHA256Hex(sha256) {
            problems.append("artifact.sha256 must be 64 lowercase hex digits")
        }
        if size == 0 || size > ManifestLimits.maxArtifactSize {
            problems.append("artifact.size \(size) is out of bounds (1 byte to 64 GiB)")
        }
        if let url { problems += Self.urlProblems(url) }
        return problems
    }

    /// Why `url` cannot be a manifest's `artifact.url` (empty when it can), for tools that
    /// take one before there is a manifest to validate.
    public static func urlProblems(_ url: String) -> [String] {
        var problems: [String] = []
        if url.utf8.count > ManifestLimits.maxURLBytes {
            problems.append("artifact.url is longer than \(ManifestLimits.maxURLBytes) bytes")
        }
        if !(url.hasPrefix("https://") || url.hasPrefix("http://")) {
            problems.append("artifact.url must be an http:// or https:// URL")
        }
        return problems
    }
}

extension Hook {
    func problems(field: String) -> [String] {
        var problems = command.problems(field: "\(field).command")
        if let timeout, !ManifestLimits.hookTimeout.contains(timeout) {
            problems.append("\(field).timeout \(timeout) is out of bounds (1s to 1h)")
        }
        return problems
    }
}

extension Command {
    func problems(field: String) -> [String] {
        switch self {
        case .argv(let argv):
            if argv.isEmpty || argv[0].isEmpty { return ["\(field) must name a program"] }
            if argv.count > ManifestLimits.maxArguments {
                return ["\(field) has more than \(ManifestLimits.maxArguments) arguments"]
            }
            if argv.contains(where: { $0.utf8.count > ManifestLimits.maxArgumentBytes || $0.utf8.contains(0) }) {
                return ["\(field) has an argument that is too long or contains NUL"]
            }
            return []
        case .shell(let script):
            if script.allSatisfy(\.isWhitespace) { return ["\(field) is an empty shell command"] }
            if script.utf8.count > ManifestLimits.maxShellBytes || script.utf8.contains(0) {
                return ["\(field) is longer than \(ManifestLimits.maxShellBytes) bytes or contains NUL"]
            }
            return []
        }
    }
}

extension HealthPolicy {
    func problems() -> [String] {
        var problems: [String] = []
        if checks.isEmpty { problems.append("health.checks must list at least one check") }
        if checks.count > ManifestLimits.maxChecks {
            problems.append("health.checks lists more than \(ManifestLimits.maxChecks) checks")
        }
        for (index, check) in checks.enumerated() {
            let field = "health.checks[\(index)]"
            switch check {
            case .http(let url, _, let body):
                if !url.hasPrefix("http://") || url.utf8.count > ManifestLimits.maxURLBytes {
                    problems.append("\(field).url must be an http:// URL (the agent checks services on its own host)")
                }
                if let body, body.utf8.count > 1024 { problems.append("\(field).bodyContains is over 1 KiB") }
            case .tcp(let host, let port):
                if host.isEmpty || host.utf8.count > 253 { problems.append("\(field).host is empty or too long") }
                if !(1...65_535).contains(port) { problems.append("\(field).port \(port) is not a TCP port") }
            case .command(let command):
                problems += command.problems(field: "\(field).command")
            case .prometheus(let metric):
                problems += metric.problems(field: field)
            }
        }
        if let timeout, !ManifestLimits.checkTimeout.contains(timeout) {
            problems.append("health.timeout \(timeout) is out of bounds (100ms to 5m)")
        }
        if let interval, !ManifestLimits.checkInterval.contains(interval) {
            problems.append("health.interval \(interval) is out of bounds (100ms to 10m)")
        }
        if let deadline, !ManifestLimits.checkDeadline.contains(deadline) {
            problems.append("health.deadline \(deadline) is out of bounds (1s to 1h)")
        }
        if effectiveDeadline < effectiveTimeout {
            problems.append("health.deadline must be at least health.timeout")
        }
        return problems
    }
}

private func textProblems(_ field: String, _ value: String?, max: Int, multiline: Bool) -> [String] {
    guard let value else { return [] }
    if value.utf8.count > max { return ["\(field) is longer than \(max) bytes"] }
    let allowed: (Unicode.Scalar) -> Bool = { s in
        s.value >= 0x20 && s.value != 0x7F || (multiline && (s == "\n" || s == "\t"))
    }
    if !value.unicodeScalars.allSatisfy(allowed) { return ["\(field) contains control characters"] }
    return []
}
