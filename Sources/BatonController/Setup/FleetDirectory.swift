import BatonPKI
import BatonProtocol
import Foundation

/// `baton init DIR`: a new fleet directory in one step: the fleet CA, the controller's
/// certificate and signing key, a trust policy naming that key, and example fleet, app
/// and controller files that work together as written.
public enum FleetDirectory {
    /// What was made, for the operator's next steps.
    public struct Made: Sendable {
        public var directory: String
        /// The controller's certificate and key, relative to `directory`.
        public var certificate: String
        public var key: String
        public var signingKeyID: String
        public var environments: [String]
    }

    /// Refuses a directory that already has files, and names that break the naming rule.
    public static func create(at dir: String, controller name: String, environments: [String]) throws(ControllerError) -> Made {
        try ControllerError.checkName(name, "controller")
        guard !environments.isEmpty else { throw ControllerError(.invalidName, "--environments must be names like staging,production") }
        for environment in environments { try ControllerError.checkName(environment, "environment") }
        let fm = FileManager.default
        if let entries = try? fm.contentsOfDirectory(atPath: dir), !entries.isEmpty {
            throw ControllerError(.fileExists, "'\(dir)' already has files; choose a new directory")
        }
        func path(_ relative: String) -> String { (dir as NSString).appendingPathComponent(relative) }
        func relative(_ full: String) -> String { full.hasPrefix(dir + "/") ? String(full.dropFirst(dir.count + 1)) : full }
        do {
            for sub in ["apps", "pki"] { try fm.createDirectory(atPath: path(sub), withIntermediateDirectories: true) }
            try fm.createDirectory(atPath: path("keys"), withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw ControllerError(.stateError, "cannot create '\(dir)': \(error.localizedDescription)")
        }
        let written: (certificate: String, key: String)
        do {
            let ca = try FleetCA.create(in: path("pki/ca"), name: (dir as NSString).lastPathComponent)
            written = try ca.issueController(name: name).write(to: path("pki"))
        } catch {
            throw ControllerError(.credentialsInvalid, "\(error.code.rawValue): \(error.message)")
        }
        let key = SigningKey()
        try write(key.pem, to: path("keys/\(name).key"), mode: 0o600)
        try write(key.verifyingKey.pem, to: path("keys/\(name).pub"))
        let made = Made(
            directory: dir, certificate: relative(written.certificate), key: relative(written.key), signingKeyID: key.keyid,
            environments: environments)
        for (file, text) in templates(made, controller: name) { try write(text + "\n", to: path(file)) }
        return made
    }

    /// The example files, by path relative to the directory.
    static func templates(_ made: Made, controller name: String) -> [(String, String)] {
        let environmentLines = made.environments.map { env in
            "  \(env): {threshold: 1, keys: [\(name)], rollbackThreshold: 1}"
                + (env == "production" ? "   # add approvers' keys and raise threshold to 2" : "")
        }.joined(separator: "\n")
        return [
            ("trust-policy.yaml", """
                # Which keys may approve releases, per environment (Protocol/PROTOCOL.md §7). Copy this
                # file and the .pub files to every agent (its `trust:`). An environment with
                # threshold 2 needs two distinct approvers' signatures (`baton manifest sign`).
                keys:
                  \(name): keys/\(name).pub
                environments:
                \(environmentLines)
                """),
            ("fleet.yaml", """
                # The hosts (reviewed like code; no secrets here). One entry per agent:
                # id = the agent's hostId and certificate identity; address = its listen address.
                hosts:
                  - id: web-1
                    address: 127.0.0.1:7443
                    environment: \(made.environments[0])
                    labels: {role: web}
                """),
            ("apps/web.yaml", """
                # One app: what its releases run and how they are checked (the manifest's own shapes).
                app: web
                owner: team-web
                environments: [\(made.environments.joined(separator: ", "))]
                keep: 5
                bake: 30s
                hooks:
                  activate: {command: [systemctl, restart, web], timeout: 60s}
                health:
                  checks:
                    - {type: http, url: "http://127.0.0.1:8080/health", expectStatus: "200-299"}
                  interval: 1s
                  deadline: 30s
                """),
            ("baton.yaml", """
                # The controller's configuration: run `baton` in this directory, or --config / BATON_CONFIG.
                fleet: fleet.yaml
                apps: apps
                trustPolicy: trust-policy.yaml
                stateDir: .baton
                tls: {certificate: \(made.certificate), key: \(made.key), ca: pki/ca/ca.pem}
                signingKey: keys/\(name).key
                """),
            (".gitignore", ".baton/\npki/ca/ca.key\nkeys/*.key\npki/*.key"),
        ]
    }

    /// A new file, never over an existing one, with `mode` from the moment it exists (a
    /// private key is never readable by others, not even briefly).
    static func write(_ text: String, to path: String, mode: mode_t = 0o644) throws(ControllerError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else {
            let reason = String(cString: strerror(errno))
            throw ControllerError(errno == EEXIST ? .fileExists : .stateError, "cannot write '\(path)': \(reason)")
        }
        defer { close(fd) }
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Foundation.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { throw ControllerError(.stateError, "cannot write '\(path)': \(String(cString: strerror(errno)))") }
            offset += n
        }
    }
}
