import BatonProtocol
import Foundation

/// `baton check`: everything the controller reads, checked before a rollout needs it,
/// without contacting any agent. Each check ends `ok` with what it found, or with the
/// code and message of what is wrong and what to do.
public enum ConfigurationCheck {
    public struct Outcome: Sendable, Equatable {
        public var what: String
        /// What was found, when the check passed.
        public var detail: String?
        public var error: ErrorInfo?
        public var ok: Bool { error == nil }

        public init(what: String, detail: String? = nil, error: ErrorInfo? = nil) {
            self.what = what
            self.detail = detail
            self.error = error
        }
    }

    public struct Report: Sendable {
        public var outcomes: [Outcome]
        /// The fleet, when it loaded: `--reach` asks its hosts.
        public var fleet: Fleet?
        /// The controller's own credentials are good: agents can be asked.
        public var credentialsReady: Bool
    }

    public static func run(_ files: ControllerFiles, now: Date = Date()) -> Report {
        let configuration = files.configuration
        var outcomes = [Outcome(what: "configuration", detail: configuration.file ?? "flags and environment only")]
        func check(_ what: String, _ body: () throws -> String) {
            do {
                outcomes.append(Outcome(what: what, detail: try body()))
            } catch let error as any CodedError {
                outcomes.append(Outcome(what: what, error: ErrorInfo(code: error.reportedCode, message: error.operatorMessage)))
            } catch {
                outcomes.append(Outcome(what: what, error: ErrorInfo(code: "internal_error", message: "\(error)")))
            }
        }

        var policy: TrustPolicy?
        check("trust policy") {
            guard let loaded = try files.policy() else {
                throw ConfigurationError(.missingField, "no trust policy: set `trustPolicy:` in baton.yaml or --trust-policy")
            }
            policy = loaded
            return "\(configuration.trustPolicyPath ?? "-"): environments \(loaded.environments.keys.sorted().joined(separator: ", "))"
        }
        var fleet: Fleet?
        check("fleet") {
            let loaded = try files.fleet()
            fleet = loaded
            return "\(loaded.hosts.count) host(s) in \(Set(loaded.hosts.map(\.environment)).sorted().joined(separator: ", "))"
        }
        outcomes += apps(files, policy: policy)
        check("signing key") {
            guard let key = try files.signingKey() else { return "none set (reverts and rollbacks need `signingKey:` in baton.yaml)" }
            let names = policy.map { $0.names(of: key.verifyingKey) } ?? []
            guard !names.isEmpty || policy == nil else {
                throw ControllerError(
                    .untrustedKey,
                    "\(configuration.signingKeyPath ?? "-") (keyid \(key.keyid)) is not in the trust policy: agents would refuse what it signs")
            }
            return "\(configuration.signingKeyPath ?? "-"): \(names.joined(separator: ", "))"
        }
        var credentialsReady = false
        check("TLS credentials") {
            let checked = try configuration.requireCredentials().check(now: now)
            let days = checked.certificate.daysUntilExpiry(now: now)
            guard days >= FleetStatus.certificateWarningDays else {
                throw ControllerError(
                    .certificateExpiring,
                    "\(configuration.certificatePath ?? "-") expires in \(days) day(s); renew it with `baton pki issue controller`")
            }
            credentialsReady = true
            return "\(checked.certificate.identity.uri), valid \(days) more day(s), signed by the fleet CA"
        }
        return Report(outcomes: outcomes, fleet: fleet, credentialsReady: credentialsReady)
    }

    /// Every app file in the apps directory loads, and names only environments the trust
    /// policy lists.
    static func apps(_ files: ControllerFiles, policy: TrustPolicy?) -> [Outcome] {
        guard let directory = files.configuration.appsDirectory else {
            return [Outcome(what: "apps", error: ErrorInfo(code: ControllerError.Code.appUnknown.rawValue, message: "no apps directory: set `apps:` in baton.yaml or --apps"))]
        }
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".yaml") }.sorted()
        guard !names.isEmpty else {
            return [Outcome(what: "apps", error: ErrorInfo(code: ControllerError.Code.appUnknown.rawValue, message: "no app files in \(directory)"))]
        }
        return names.map { file in
            let name = file.hasSuffix(".app.yaml") ? String(file.dropLast(9)) : String(file.dropLast(5))
            do {
                let app = try files.app(name)
                let unknown = policy.map { policy in app.environments.filter { policy.environments[$0] == nil } } ?? []
                guard unknown.isEmpty else {
                    return Outcome(what: "app \(name)", error: ErrorInfo(
                        code: ControllerError.Code.unknownEnvironment.rawValue,
                        message: "\(file) names environment(s) the trust policy does not list: \(unknown.joined(separator: ", "))"))
                }
                return Outcome(what: "app \(name)", detail: "\(directory)/\(file), environments \(app.environments.joined(separator: ", "))")
            } catch let error as any CodedError {
                return Outcome(what: "app \(name)", error: ErrorInfo(code: error.reportedCode, message: error.operatorMessage))
            } catch {
                return Outcome(what: "app \(name)", error: ErrorInfo(code: ControllerError.Code.appUnknown.rawValue, message: "\(error)"))
            }
        }
    }
}
